"""The options of ``segpipe evaluate`` (components/evaluate_logged.py) and the checks that
need nothing but them and the data's kind, in a module of their own so the CLI builds its
flags and refuses a bad combination without importing MLflow or TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from components.artifacts import SplitName

if TYPE_CHECKING:
    from components.ingest_options import IngestOptions


class EvaluationInputError(ValueError):
    """The model and the data do not fit together (classes, bands, tiling), the split to
    score is empty, or an option does not apply to the data: refused before any prediction."""


#: Upper bounds of the sizes a user gives, checked before any work (reasons in the fields).
MAX_OVERLAY_TILES = 32
MAX_BATCH_SIZE = 1024


class EvaluateOptions(BaseModel):
    """How ``segpipe evaluate`` scores a logged model; the source's reading is IngestOptions."""

    model_config = ConfigDict(extra="forbid")

    split: SplitName | None = Field(
        None, description="split of a prepared dataset to score; unset: test. A source is "
        "scored whole (all its scenes form the test split)")
    log_to_mlflow: bool = Field(
        False, description="also log the evaluation as a run of the model's tracking store, "
        "tagged with the model version and the dataset digest, its metrics linked to the model")
    mlflow_experiment: str = Field("segpipe-evaluations", min_length=1,
                                   description="MLflow experiment of evaluation runs")
    overlay_tiles: int = Field(4, ge=0, le=MAX_OVERLAY_TILES, description="tiles drawn with "
                               "their labels and prediction in overlays.png (at most "
                               f"{MAX_OVERLAY_TILES}: one figure, a row per tile, each read "
                               "from disk; more rows are no longer readable)")
    batch_size: int = Field(8, ge=1, le=MAX_BATCH_SIZE, description="tiles per forward pass "
                            f"(tile-level scores; at most {MAX_BATCH_SIZE}: a batch is read and "
                            f"held in memory whole, {MAX_BATCH_SIZE} tiles of 512 px x 4 bands "
                            "are 4 GiB as float32, and larger batches score no faster)")


#: What an evaluation writes into its output folder: the one set of files replaced whole.
RESULT_FILES = frozenset({"metrics.json", "report.md", "report.html", "confusion_matrix.png",
                          "overlays.png"})


def check_out_folder(out_dir: str | Path, data: str) -> None:
    """``out_dir`` is new, empty or holds a previous evaluation's results only (they are
    replaced as one set), and is neither the data folder nor inside it: refused before any
    work rather than writing reports into the user's data or deleting other files."""
    out = Path(out_dir).absolute().resolve()
    if "://" not in data:
        source = Path(data).absolute().resolve()
        if out == source or source in out.parents:
            raise EvaluationInputError(f"--out {out_dir} is inside the data {data}: give a "
                                       f"folder outside it")
    if not out.is_dir():
        return
    others = sorted(entry.name for entry in out.iterdir() if entry.name not in RESULT_FILES)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3
                                          else "")
        raise EvaluationInputError(
            f"--out {out_dir} holds files that are not an evaluation's ({shown}); its "
            f"results replace the folder whole: give a new or empty folder")


def is_prepared_dataset(data: str | Path) -> bool:
    """A folder with tiles.json is a prepared dataset; anything else is a source."""
    return "://" not in str(data) and (Path(data) / "tiles.json").is_file()


def check_options_apply(data: str, options: EvaluateOptions,
                        ingest: IngestOptions | None) -> None:
    """Ingest options only for a source, ``split`` (other than test) only for a prepared
    dataset: the rule the component applies, called by the CLI before any store or model."""
    prepared = is_prepared_dataset(data)
    if prepared and ingest is not None:
        raise EvaluationInputError(f"{data} is a prepared dataset: ingest options apply to a "
                                   f"source of scenes and labels only")
    if not prepared and options.split not in (None, "test"):
        raise EvaluationInputError(f"{data} is a source, scored whole (all its scenes form "
                                   f"the test split); --split applies to a prepared dataset")
