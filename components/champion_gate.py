"""The champion gate: whether a newly registered version takes the ``champion`` alias.

The challenger is compared with the current champion on the same test split (the split
digest recorded on each version), the same metric and the same scoring rule (which pixels
scene-level scores count); a champion scored otherwise is re-scored on this split, and one
that cannot be (other classes or bands, unloadable) stays. The decision and
both scores are tags on the new version.

Two runs may register versions of one model at once (two web-app trainings, two laptops on
one MLflow server). MLflow has no compare-and-set for aliases, so before moving the alias the
gate reads it again: when another run moved it meanwhile (during a champion re-score, which
takes seconds to minutes), the decision is taken again against the new champion instead of
overwriting it. What remains is one round trip to the store between that read and the move."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import BaseModel

from components.scene_repeats import SCENE_SCORING

if TYPE_CHECKING:
    from components.register import RegisterOptions

log = logging.getLogger(__name__)

TAG_DECISION = "segpipe.decision"
TAG_CHALLENGER = "segpipe.challenger_miou"
TAG_CHAMPION = "segpipe.champion_miou"
TAG_SPLIT = "segpipe.test_split_digest"
TAG_PREVIOUS = "segpipe.champion_version_before"
# Which metric the gate's scores are (scene-level miou, tile_miou...): a recorded score of
# another metric, or of a version from before the tag, is re-scored, never compared.
TAG_GATE_METRIC = "segpipe.gate_metric"
# Which pixels the scores counted (components/scene_repeats.py SCENE_SCORING): the split
# digest names the tiles, not the rule that picks a scene's scored pixels, so a version
# scored under another rule, or from before the tag, is re-scored, never compared.
TAG_SCENE_SCORING = "segpipe.scene_scoring"

# Each retry means another run moved the alias during this gate's decision; more than a
# few in a row is not contention a laptop or a team sees, so the gate then keeps what is.
MAX_DECISIONS = 5


class GateDecision(BaseModel):
    promoted: bool
    decision: str
    champion_score: float | None
    previous_champion_version: str | None


def champion_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _decimals(recorded: str) -> int:
    """How many decimals a recorded score was written with (17 for exponent forms)."""
    if "e" in recorded.lower() or "." not in recorded:
        return 17
    return len(recorded.split(".", 1)[1])


def _told_apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with 4 decimals, or as many more as it takes to show they differ."""
    for digits in range(4, 18):
        if f"{a:.{digits}f}" != f"{b:.{digits}f}":
            return f"{a:.{digits}f}", f"{b:.{digits}f}"
    return f"{a:.4f}", f"{b:.4f}"


def _below_trivial(champion: ModelVersion | None, score: float, trivial: float | None,
                   options: RegisterOptions) -> str | None:
    """The decision for a challenger that does not beat the trivial baseline and may not be
    promoted (``options.promote_below_trivial`` off); None otherwise."""
    if trivial is None or options.promote_below_trivial or score > trivial:
        return None
    kept = f"kept champion v{champion.version}" if champion is not None else "no champion"
    ours, theirs = _told_apart(score, trivial)
    return (f"{kept}: {options.metric} {ours} does not beat the trivial baseline {theirs} "
            f"(the train split's majority class everywhere; registry.promote_below_trivial "
            f"lets such a version become champion)")


def _decide(champion: ModelVersion | None, version: str, score: float,
            test_split_digest: str, options: RegisterOptions,
            rescore: Callable[[ModelVersion], float] | None, trivial: float | None = None
            ) -> tuple[bool, str, float | None]:
    """(promoted, decision, champion's score) of ``version`` scoring ``score`` against
    ``champion``, and against ``trivial``, the trivial baseline's score on the same pixels
    when known."""
    if champion is not None and str(champion.version) == str(version):
        return True, "already champion", score
    refused = _below_trivial(champion, score, trivial, options)
    if refused is not None:
        return False, refused, None
    if champion is None:
        return True, "promoted: no champion yet", None
    compared = score
    comparable = (champion.tags.get(TAG_SPLIT) == test_split_digest
                  and champion.tags.get(TAG_GATE_METRIC) == options.metric
                  and champion.tags.get(TAG_SCENE_SCORING) == SCENE_SCORING)
    recorded = champion.tags.get(TAG_CHALLENGER)
    if comparable and recorded is not None:
        # Like with like: a champion recorded with fewer digits (tags from before they held
        # the full score) is compared with the challenger rounded the same way, so an exact
        # tie stays a tie.
        champion_score, how = float(recorded), "same test split"
        compared = round(score, _decimals(recorded))
    elif rescore is not None:
        try:
            champion_score, how = rescore(champion), "champion re-scored on this split"
        except Exception as err:  # other classes/bands, unloadable model...
            log.warning("cannot re-score champion v%s: %s", champion.version, err)
            champion_score, how = None, f"champion not comparable: {err}"[:400]
    else:
        champion_score, how = None, "champion scored on another split, metric or scoring rule"
    if champion_score is None:
        return False, f"kept champion v{champion.version}: {how}", None
    ours, theirs = _told_apart(compared, champion_score)
    if compared > champion_score + options.min_improvement:
        return True, (f"promoted: {options.metric} {ours} > champion v{champion.version} "
                      f"{theirs} ({how})"), champion_score
    return False, (f"kept champion v{champion.version}: {options.metric} {ours} <= {theirs} "
                   f"+ {options.min_improvement} ({how})"), champion_score


def _same(a: ModelVersion | None, b: ModelVersion | None) -> bool:
    return (a is None) == (b is None) and (a is None or str(a.version) == str(b.version))


def _tag(client: MlflowClient, name: str, version: str, score: float,
         test_split_digest: str, options: RegisterOptions, decision: str,
         champion_score: float | None, champion: ModelVersion | None) -> None:
    # Full precision (repr round-trips a float), so the next gate compares exact scores.
    tags = {TAG_DECISION: decision, TAG_CHALLENGER: repr(float(score)),
            TAG_CHAMPION: "none" if champion_score is None else repr(float(champion_score)),
            TAG_SPLIT: test_split_digest,
            TAG_PREVIOUS: str(champion.version) if champion is not None else "none",
            TAG_GATE_METRIC: options.metric, TAG_SCENE_SCORING: SCENE_SCORING}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def apply_champion_gate(client: MlflowClient, name: str, version: str, score: float,
                        test_split_digest: str, options: RegisterOptions,
                        rescore: Callable[[ModelVersion], float] | None = None, *,
                        trivial_score: float | None = None) -> GateDecision:
    """Decide, tag ``version`` with the decision and both scores, and move the champion
    alias when the challenger wins: beats the champion and, unless
    ``options.promote_below_trivial``, ``trivial_score`` (the trivial baseline's score on the
    same test pixels; None: not checked)."""
    champion = champion_version(client, name, options.champion_alias)
    for _ in range(MAX_DECISIONS):
        promoted, decision, champion_score = _decide(champion, version, score,
                                                     test_split_digest, options, rescore,
                                                     trivial_score)
        _tag(client, name, version, score, test_split_digest, options, decision,
             champion_score, champion)
        # Read again right before the move (the tags above are round trips of their own).
        now = champion_version(client, name, options.champion_alias)
        if _same(now, champion):
            break
        log.info("the champion of %s moved to v%s during this gate's decision; deciding "
                 "again", name, now.version if now else "none")
        champion = now
    else:
        promoted, champion_score = False, None
        decision = (f"kept champion v{champion.version}" if champion else "no champion") + \
            f": the alias moved {MAX_DECISIONS} times during this gate; run it again"
        _tag(client, name, version, score, test_split_digest, options, decision,
             champion_score, champion)
    if promoted:
        client.set_registered_model_alias(name, options.champion_alias, version)
    previous = str(champion.version) if champion is not None else None
    return GateDecision(promoted=promoted, decision=decision, champion_score=champion_score,
                        previous_champion_version=previous)
