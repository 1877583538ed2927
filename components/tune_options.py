"""The tune step's options: the study's size, budget, pruning, search space and the fixed
training settings of every trial, validated once when the config is read
(components/tune.py runs the study)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from components.train_options import TrainParams
from components.tune_space import ParamSpec, SearchSpace, built_in_spaces

TRIALS_DIR = "trials"  # under a worker's output (and checkpoint_dir): one folder per trial
TRIAL_ERROR_ATTR = "segpipe.error"  # a failed trial's error on one line, in the study

#: TrainParams fields the study sets for every trial, so tuning.train refuses them, and why.
#: The validator below and docs/configuration.md (train_field_notes) both read this.
SET_BY_TUNING: dict[str, str] = {"epochs": "every trial runs up to tuning.epochs; set that"}


def searched_training(space: SearchSpace | None) -> list[str]:
    """The TrainParams fields a study with this search space searches (unset: the built-in
    space, whose GPU and CPU versions search the same ones), which tuning.train refuses."""
    spaces = [space] if space is not None else list(built_in_spaces().values())
    return list(spaces[0].training)


def train_field_notes() -> dict[str, str]:
    """What docs/configuration.md says of each tuning.train field the study sets or
    searches: the same rule as TuneOptions' validator, from the same lists."""
    notes = {name: f"**not settable**: {why}" for name, why in SET_BY_TUNING.items()}
    for name in searched_training(None):
        notes[name] = ("**searched**: set through `tuning.search_space.training`; "
                       "settable here only when your own `search_space.training` leaves it "
                       "out")
    notes["architecture"] = ("**searched**: `tuning.search_space.architecture` picks it; "
                             "here only one of its choices, naming the architecture "
                             "`model_params` are for")
    return notes


#: What the parent run logs for a tuning.train field a search dimension draws per trial.
SEARCHED = "searched"


class TuneOptions(BaseModel):
    """The study: how many trials, how they are spread, searched, trained and pruned."""

    model_config = ConfigDict(extra="forbid")

    n_trials: int = Field(20, gt=0, description="trials in the study, across all workers; "
                          "a search space of fewer points runs one trial per point")
    n_workers: int = Field(1, ge=1, le=64, description="parallel Optuna workers sharing one "
                           "study (Kubeflow ParallelFor tasks; one GPU each on a cluster)")
    budget_minutes: float = Field(0, ge=0, description="wall-clock budget of the whole study, "
                                  "all workers together, from when the first worker starts (a "
                                  "resumed run keeps the first deadline): no trial starts "
                                  "after it, and a running trial stops at the end of the epoch "
                                  "that crosses it, keeping its best epoch (a complete trial); "
                                  "0: no budget")
    epochs: int = Field(20, ge=1, description="maximum epochs per trial (early stopping and "
                        "pruning may end a trial sooner)")
    seed: int = Field(0, description="sampler seed; worker i uses seed + i")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Optuna pruner stopping unpromising trials after an epoch")
    pruner_startup_trials: int = Field(5, ge=0, description="median pruner: trials that "
                                       "finish before any is pruned")
    pruner_warmup_epochs: int = Field(2, ge=0, description="epochs of a trial before it can "
                                      "be pruned (hyperband: its minimum resource)")
    search_space: SearchSpace | None = Field(
        None, description="what the study searches (see SearchSpace); unset: the built-in "
        "space, GPU or CPU, of the machine the first tune worker runs on (both below), kept "
        "in the study for every worker; the parts a config leaves out (and models per "
        "architecture) come from it. The encoder U-Nets are left out of the built-in space "
        "when the machine can neither find their ImageNet weights in Keras' cache nor "
        "download them. The space searched is logged as search_space.json on the run")
    train: TrainParams = Field(default_factory=TrainParams, description="fixed training "
                               "settings for every trial: everything the study does not search")
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="configs tried "
                                          "first, by Optuna parameter name (known-good ones)")
    checkpoint_dir: str | None = Field(
        None, description="folder where trials train and keep their epoch checkpoints, so "
        "that a trial interrupted by a kill resumes at its last epoch when the run is started "
        "again; unset: inside each worker's output (an interrupted trial starts over). "
        "`segpipe run` uses <workdir>/trials")

    def train_as_run(self) -> dict[str, str]:
        """What the trials ran in place of each tuning.train field the study sets or searches
        (the validator's lists): the study's own value of a field it sets (epochs: every
        trial's maximum), SEARCHED for a field a dimension of the search space draws. The
        parent run logs these rather than defaults no trial used."""
        ran = {name: str(getattr(self, name)) for name in SET_BY_TUNING}
        return ran | {name: SEARCHED
                      for name in ("architecture", *searched_training(self.search_space))}

    @model_validator(mode="before")
    @classmethod
    def _no_timeout_s(cls, data: Any) -> Any:
        if isinstance(data, dict) and "timeout_s" in data:
            raise ValueError("timeout_s: replaced by budget_minutes, the wall-clock limit of "
                             "the whole study")
        return data

    @model_serializer(mode="wrap")
    def _search_space_as_given(self, handler: SerializerFunctionWrapHandler,
                               info: SerializationInfo) -> dict[str, Any]:
        # Dumped as given: a part left out must stay out on its way to the tune workers,
        # which fill it in from their own machine's built-in space. Not a field serializer:
        # pydantic then keeps the field under exclude_defaults (``search_space: null``).
        data = handler(self)
        if data.get("search_space") is not None:
            data["search_space"] = self.search_space.model_dump(mode=info.mode,
                                                                exclude_unset=True)
        return data

    @model_validator(mode="after")
    def _empty_space_is_the_built_in_one(self) -> TuneOptions:
        if self.search_space is not None and not self.search_space.model_fields_set:
            self.search_space = None  # `search_space: {}` says "the built-in space" too
        return self

    @model_validator(mode="after")
    def _train_holds_only_what_no_trial_sets(self) -> TuneOptions:
        # A value here that the study sets anyway would be silently ignored. Compared with
        # the defaults, not by fields set: the run parameters carry every field.
        def changed(name: str) -> bool:
            return getattr(self.train, name) != TrainParams.model_fields[name].default

        for name, why in SET_BY_TUNING.items():
            if changed(name):
                raise ValueError(f"train.{name}: {why}")
        searched = [name for name in searched_training(self.search_space) if changed(name)]
        if searched:
            raise ValueError(
                f"train.{searched[0]}: the search space searches it "
                f"(search_space.training.{searched[0]}); to fix it, give that dimension one "
                "choice there, e.g. {type: categorical, choices: [...]} (a "
                "search_space.training of your own replaces the built-in one: list every "
                "dimension to keep searching)")
        for name, spec in (self.search_space.training.items() if self.search_space else ()):
            _check_drawable(name, spec)
        spaces = ([self.search_space] if self.search_space is not None else
                  list(built_in_spaces().values()))
        choices = list(dict.fromkeys(c for space in spaces
                                     for c in space.architecture.choices or []))
        if changed("architecture") and self.train.architecture not in choices:
            raise ValueError(
                f"train.architecture: the search space picks the architecture "
                f"(search_space.architecture: {', '.join(map(str, choices))}); "
                "train.architecture only says which one train.model_params are for")
        return self


def _check_drawable(name: str, spec: ParamSpec) -> None:
    """Each value a trial can draw from a training dimension of the config's space (a
    choice, an int range's ends) is one TrainParams takes (e.g. batch_size <= 1024): refused
    with the config rather than as a failed trial each. A float range's ends are almost never
    drawn, so they are left to the trial."""
    values: list = []
    if spec.type == "categorical":
        values = list(spec.choices or [])
    elif spec.type == "int":
        step, low = int(spec.step or 1), int(spec.low)
        values = [low, low + (int(spec.high) - low) // step * step]
    for value in values:
        try:
            TrainParams.model_validate({name: value})
        except ValidationError as err:
            raise ValueError(f"search_space.training.{name}: {value!r}: "
                             f"{err.errors()[0]['msg']}") from None
