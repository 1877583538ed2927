"""What makes two pipeline runs comparable in MLflow: the whole resolved config (as flat params
and as ``config.yaml``), the original source, the code version, the search space, and the
data each split holds. Logged on the active run (the pipeline's parent run)."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from components.tracking import SOURCE_TAG, redact_url

CODE_ROOT = Path(__file__).resolve().parents[1]
VERSION_TAG = "segpipe.version"
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own: the UI shows it
GIT_DIRTY_TAG = "segpipe.git_dirty"
#: Sections logged as files rather than params: too big or too nested to compare as params.
AS_FILES = {"search_space": "search_space.json", "enqueue": "enqueue.json"}
MAX_PARAM_CHARS = 500


def code_version() -> dict[str, str]:
    """segpipe's version, and the git commit (and whether the tree had changes) when the code
    runs from a checkout."""
    try:
        version = metadata.version("segpipe")
    except metadata.PackageNotFoundError:
        version = "unknown"
    tags = {VERSION_TAG: version}
    try:
        commit = subprocess.run(["git", "-C", str(CODE_ROOT), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(["git", "-C", str(CODE_ROOT), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return tags  # an installed package or a container image: no checkout to ask
    tags[GIT_COMMIT_TAG] = commit.stdout.strip()
    tags[GIT_DIRTY_TAG] = str(bool(status.stdout.strip())).lower()
    return tags


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"data": {"tile": {"patch_size": 256}}}`` -> ``{"data.tile.patch_size": "256"}``;
    lists stay whole; the big nested sections in AS_FILES are left out."""
    params: dict[str, str] = {}
    for key, value in config.items():
        if key in AS_FILES:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            params.update(flat_params(value, f"{name}."))
        else:
            params[name] = str(value)[:MAX_PARAM_CHARS]
    return params


def log_pipeline_config(config: dict[str, Any], *, resumed: bool,
                        as_run: dict[str, str] | None = None) -> None:
    """The resolved config on the active run: flat params (once: params are write-once, and a
    resumed run logged them already) with ``as_run``'s values in place of those of the same
    name (what the steps ran instead of the config's value), ``config.yaml`` (as given), the
    big sections as JSON files, the source as a tag and the code version."""
    import mlflow

    config = _redacted(config)
    if not resumed:
        mlflow.log_params(flat_params(config) | (as_run or {}))
    mlflow.log_text(yaml.safe_dump(config, sort_keys=False), "config.yaml")
    tuning = config.get("tuning") or {}
    for key, name in AS_FILES.items():
        if key in tuning:
            mlflow.log_dict(tuning[key], name)
    mlflow.set_tags({SOURCE_TAG: str(config.get("source", "")), **code_version()})


def _redacted(config: dict[str, Any]) -> dict[str, Any]:
    """The stores' URLs and the source (an http source may carry user:password@) without
    passwords."""
    tracking = dict(config.get("tracking") or {})
    for key, value in tracking.items():
        if isinstance(value, str):
            tracking[key] = redact_url(value)
    redacted = {**config, "tracking": tracking} if tracking else dict(config)
    if isinstance(config.get("source"), str):
        redacted["source"] = redact_url(config["source"])
    return redacted


def log_split_summary(summary: dict[str, Any]) -> None:
    """Tiles, scenes and class pixel shares per split as params (``data.test.share.water``),
    so the MLflow UI shows what each run trained and was scored on."""
    import mlflow

    params = {}
    for split, figures in summary.items():
        params[f"data.{split}.tiles"] = str(figures["tiles"])
        params[f"data.{split}.scenes"] = str(figures["scenes"])
        for name, share in figures["class_shares"].items():
            params[f"data.{split}.share.{name}"] = f"{share:.4f}"
    existing = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    mlflow.log_params({k: v for k, v in params.items() if k not in existing})
