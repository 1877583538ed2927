"""What the Models page shows: registered models and their versions, read from MLflow.

Scores, architecture, dataset digest and the gate decision are the tags that
``components.register`` puts on each version; patch size, bands and classes come from the
version's own serving config artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from mlflow import MlflowClient

from components.champion_gate import TAG_DECISION
from components.register import (  # the tags register_model sets
    TAG_ARCHITECTURE,
    TAG_DATASET,
    TAG_TRAIN_RUN,
)
from components.register import TAG_TEST_PREFIX as TEST_PREFIX
from pipelines.ui.settings import UiError
from serving.config import ServingConfig

CLASS_IOU_PREFIX = "iou_"
CHAMPION, CHALLENGER = "champion", "challenger"
#: Versions listed per model, newest first: a long-lived registry holds hundreds.
MAX_VERSIONS = 200
MAX_MODELS = 200


@dataclass(frozen=True)
class VersionSummary:
    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created_ms: int
    test_metrics: dict[str, float] = field(default_factory=dict)
    architecture: str | None = None
    dataset_digest: str | None = None
    decision: str | None = None
    train_run_id: str | None = None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def test_miou(self) -> float | None:
        return self.test_metrics.get("miou")

    @property
    def class_iou(self) -> dict[str, float]:
        """Per-class test IoU, by class name (classes never present in the test split have
        none)."""
        return {key[len(CLASS_IOU_PREFIX):]: value for key, value in self.test_metrics.items()
                if key.startswith(CLASS_IOU_PREFIX)}

    def label(self) -> str:
        """One line for a picker: version, aliases, test mIoU."""
        parts = [f"v{self.version}"]
        parts += list(self.aliases)
        if self.test_miou is not None:
            parts.append(f"mIoU {self.test_miou:.3f}")
        return " · ".join(parts)


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def summarize(version, aliases: dict[str, str]) -> VersionSummary:
    """A ModelVersion plus its registered model's alias map -> VersionSummary."""
    tags = dict(version.tags or {})
    metrics = {key[len(TEST_PREFIX):]: number for key, value in tags.items()
               if key.startswith(TEST_PREFIX) and (number := _float(value)) is not None}
    own = tuple(sorted((alias for alias, v in aliases.items() if str(v) == str(version.version)),
                       key=lambda a: (a != CHAMPION, a != CHALLENGER, a)))
    return VersionSummary(
        name=version.name, version=str(version.version), aliases=own,
        run_id=version.run_id or None, created_ms=int(version.creation_timestamp or 0),
        test_metrics=metrics, architecture=tags.get(TAG_ARCHITECTURE),
        dataset_digest=tags.get(TAG_DATASET), decision=tags.get(TAG_DECISION),
        train_run_id=tags.get(TAG_TRAIN_RUN) or None)


def registered_model_names(client: MlflowClient) -> list[str]:
    models = client.search_registered_models(max_results=MAX_MODELS)
    return sorted(model.name for model in models)


def model_versions(client: MlflowClient, name: str) -> list[VersionSummary]:
    """The model's versions, newest first (at most MAX_VERSIONS)."""
    aliases = dict(client.get_registered_model(name).aliases or {})
    escaped = name.replace("'", "\\'")
    versions = client.search_model_versions(f"name = '{escaped}'", max_results=MAX_VERSIONS,
                                            order_by=["version_number DESC"])
    summaries = [summarize(v, aliases) for v in versions]
    return sorted(summaries, key=lambda s: -int(s.version))


def default_version(versions: list[VersionSummary]) -> VersionSummary | None:
    """The champion, else the newest version."""
    for summary in versions:
        if CHAMPION in summary.aliases:
            return summary
    return versions[0] if versions else None


def run_url(base: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    if not (base and experiment_id and run_id):
        return None
    return f"{base}/#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}"


def version_url(base: str | None, name: str, version: str) -> str | None:
    if not base:
        return None
    return f"{base}/#/models/{quote(name, safe='')}/versions/{quote(version)}"


def experiment_of(client: MlflowClient, run_id: str | None) -> str | None:
    """The experiment a run belongs to, or None when the run is gone."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return client.get_run(run_id).info.experiment_id
    except MlflowException:
        return None


def serving_config(model_uri: str) -> ServingConfig:
    """The version's ServingConfig artifact, without loading Keras."""
    from serving.remote import ModelCardError, load_serving_config

    try:
        return load_serving_config(model_uri)
    except ModelCardError as exc:  # no such model, or an MLmodel without our artifacts
        raise UiError(str(exc)) from None
