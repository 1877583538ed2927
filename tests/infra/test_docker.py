"""The Dockerfiles under infra/docker: parsed (no Docker engine here), and checked against the
repository they build from, so a moved package or a hand-kept dependency list fails here."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "infra" / "docker"
DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
EXPECTED = {"component.Dockerfile", "component-gpu.Dockerfile", "serving.Dockerfile"}


def _instructions(path: Path) -> list[tuple[str, str]]:
    parser = DockerfileParser(path=str(path))
    return [
        (item["instruction"], item["value"])
        for item in parser.structure
        if item["instruction"] != "COMMENT"
    ]


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(relative, pattern) or relative.split("/")[0] == pattern
        for pattern in patterns
    )


def test_all_images_present() -> None:
    assert {path.name for path in DOCKERFILES} == EXPECTED


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_image_pinned_by_tag(dockerfile: Path) -> None:
    bases = [value for instruction, value in _instructions(dockerfile) if instruction == "FROM"]
    assert len(bases) == 1, bases
    name, _, tag = bases[0].partition(":")
    assert tag and tag != "latest", f"{dockerfile.name}: base image {bases[0]!r} has no fixed tag"
    assert any(char.isdigit() for char in tag), f"{dockerfile.name}: tag {tag!r} has no version"
    if dockerfile.name == "component-gpu.Dockerfile":
        tensorflow_pin = next(
            dep for dep in _pyproject()["project"]["dependencies"] if dep.startswith("tensorflow")
        )
        minor = tensorflow_pin.split("==")[1].rstrip(".*")
        assert name == "tensorflow/tensorflow" and tag.startswith(minor) and "gpu" in tag


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_and_are_not_dockerignored(dockerfile: Path) -> None:
    patterns = _dockerignore_patterns()
    copies = [value for instruction, value in _instructions(dockerfile) if instruction == "COPY"]
    assert copies
    for value in copies:
        *sources, _destination = shlex.split(value)
        assert not any(source.startswith("--from") for source in sources)
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"{dockerfile.name}: COPY {source} missing"
            assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_installs_the_project_from_pyproject(dockerfile: Path) -> None:
    """Same as `make install`: pip installs the project directory, so dependencies come from
    pyproject.toml alone; every package setuptools ships and the readme are in the context."""
    instructions = _instructions(dockerfile)
    copied = {
        source
        for instruction, value in instructions
        if instruction == "COPY"
        for source in shlex.split(value)[:-1]
    }
    config = _pyproject()
    package_globs = config["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {glob.rstrip("*") for glob in package_globs}
    assert top_level | {"pyproject.toml", config["project"]["readme"]} <= copied

    runs = [value for instruction, value in instructions if instruction == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0].split("&&")[0])
    assert words[:2] == ["pip", "install"]
    targets = [word for word in words[2:] if not word.startswith("-")
               and not word.endswith(".lock")]
    assert targets == ["."], f"{dockerfile.name} installs {targets}, not the project"
    # Dependencies come from pyproject.toml, at the versions `make lock` pinned: the lock is
    # a constraint, never a list of its own.
    assert words[2:4] == ["-c", "requirements/runtime.lock"], words
    assert "requirements/runtime.lock" in " ".join(value for kind, value in instructions
                                                    if kind == "COPY")
    for lock in ("runtime", "dev"):
        header = (REPO_ROOT / "requirements" / f"{lock}.lock").read_text().splitlines()[:2]
        assert "make lock" in " ".join(header), lock

    copy_pyproject = next(
        i for i, (kind, value) in enumerate(instructions) if kind == "COPY" and "pyproject" in value
    )
    assert copy_pyproject < [value for _, value in instructions].index(installs[0])
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert '-c requirements/runtime.lock -e .' in makefile
    assert '-c requirements/dev.lock -e ".[dev]"' in makefile


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_non_root(dockerfile: Path) -> None:
    users = [value for instruction, value in _instructions(dockerfile) if instruction == "USER"]
    assert users and users[-1] not in {"root", "0"}


@pytest.mark.parametrize("name", ["component.Dockerfile", "component-gpu.Dockerfile"])
def test_component_images_let_the_kfp_launcher_stage_artifacts(name: str) -> None:
    """KFP's launcher writes artifacts to /gcs, /minio and /s3; as a non-root user it can
    only if the image made them and gave them to that user."""
    instructions = _instructions(DOCKER_DIR / name)
    user = [value for kind, value in instructions if kind == "USER"][-1]
    script = " ".join(value for kind, value in instructions if kind == "RUN")
    for folder in ("/gcs", "/minio", "/s3"):
        assert re.search(rf"mkdir -p [^&]*{folder}\b", script), folder
        assert re.search(rf"chown {user}\S* [^&]*{folder}\b", script), folder


def serving_entrypoint() -> tuple[list[str], dict[str, str]]:
    """The serving image's entrypoint (exec form) and its ENV."""
    path = DOCKER_DIR / "serving.Dockerfile"
    entrypoint = json.loads(
        next(value for kind, value in _instructions(path) if kind == "ENTRYPOINT")
    )
    return entrypoint, dict(DockerfileParser(path=str(path)).envs)


def test_serving_entrypoint_is_a_valid_model_server_command() -> None:
    """The entrypoint with the image's own ENV, read by the model server's own option parser
    (serving/options.py), so a misspelt option or variable fails here rather than in a
    crash-looping pod. Only --host is on the command line: every other option comes from the
    environment, so `docker run -e SERVING_TIMEOUT=...` and the Kubernetes Deployment's
    environment reach the server."""
    from serving import options

    entrypoint, environment = serving_entrypoint()
    assert entrypoint[:3] == ["python", "-m", "serving.server"]
    assert entrypoint[3:] == ["--host", "0.0.0.0"]
    args = options.parse_args(entrypoint[3:], environ=environment)
    assert args.model_uri == "models:/segpipe@champion"
    assert args.host == "0.0.0.0"
    assert args.port == 8080
    path = DOCKER_DIR / "serving.Dockerfile"
    assert "8080" in [value for kind, value in _instructions(path) if kind == "EXPOSE"]
    # The image restates no default of the server's: one definition, in serving/options.py.
    assert args.timeout == options.DEFAULT_TIMEOUT
    assert args.max_request_mb == options.DEFAULT_MAX_REQUEST_MB
    restated = set(environment) & (set(options.ENVIRONMENT.values())
                                   - {"MODEL_URI", "SERVING_PORT"})
    assert not restated, f"the image sets the server's defaults again: {sorted(restated)}"
    override = options.parse_args(entrypoint[3:],
                                  environ={**environment, "SERVING_TIMEOUT": "900"})
    assert override.timeout == 900
