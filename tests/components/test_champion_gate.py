import pytest
from mlflow import MlflowClient

from components.champion_gate import TAG_CHALLENGER, TAG_PREVIOUS, apply_champion_gate
from components.register import RegisterOptions

pytestmark = pytest.mark.usefixtures("mlflow_store")


def _alias(alias: str, name: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)


def _bare_version(client, name: str, source: str) -> str:
    version = client.create_model_version(name, source)
    return str(version.version)


def test_an_exact_tie_keeps_the_champion(tmp_path):
    """Equal scores keep the champion, also against a champion recorded with 6 decimals
    (0.4267584 was tagged "0.426758" and lost to itself), and the decision never prints
    equal numbers on either side of '>'."""
    client, score = MlflowClient(), 0.4267584
    options = RegisterOptions(model_name="tie-test")
    client.create_registered_model("tie-test")
    first = _bare_version(client, "tie-test", tmp_path.as_uri())
    assert apply_champion_gate(client, "tie-test", first, score, "split", options).promoted
    assert float(client.get_model_version("tie-test", first).tags[TAG_CHALLENGER]) == score
    second = _bare_version(client, "tie-test", tmp_path.as_uri())
    tie = apply_champion_gate(client, "tie-test", second, score, "split", options)
    assert not tie.promoted and tie.decision.startswith("kept champion v1")
    assert _alias("champion", "tie-test") == first

    # A champion tagged before the tags held full precision: compared at its 6 decimals.
    client.set_model_version_tag("tie-test", first, TAG_CHALLENGER, f"{score:.6f}")
    third = _bare_version(client, "tie-test", tmp_path.as_uri())
    old_tie = apply_champion_gate(client, "tie-test", third, score, "split", options)
    assert not old_tie.promoted and _alias("champion", "tie-test") == first

    # A real win by less than the 4 printed decimals shows the digits that tell them apart.
    won = apply_champion_gate(client, "tie-test", third, 0.4267591, "split", options)
    assert won.promoted
    assert "0.426759 > champion v1 0.426758" in won.decision


@pytest.mark.parametrize(("theirs", "ours_wins"), [(0.7, False), (0.55, True)])
def test_a_champion_moved_by_another_run_meanwhile_is_the_one_compared(tmp_path, theirs,
                                                                       ours_wins):
    """Two runs registering one model at once (two web-app trainings): while this gate
    re-scores the old champion, the other run's gate promotes its own version. This gate
    then decides against that version, instead of overwriting a better champion with a
    version that only beat the old one (or keeping a champion it beats)."""
    name = f"race-{ours_wins}"
    client, options = MlflowClient(), RegisterOptions(model_name=name)
    client.create_registered_model(name)
    old = _bare_version(client, name, tmp_path.as_uri())
    apply_champion_gate(client, name, old, 0.4, "an-older-split", options)
    ours = _bare_version(client, name, tmp_path.as_uri())
    other = _bare_version(client, name, tmp_path.as_uri())

    def rescore_while_the_other_run_promotes(champion):
        assert str(champion.version) == old
        other_gate = apply_champion_gate(client, name, other, theirs, "split", options,
                                         rescore=lambda _: 0.5)
        assert other_gate.promoted
        return 0.5

    gate = apply_champion_gate(client, name, ours, 0.6, "split", options,
                               rescore=rescore_while_the_other_run_promotes)
    assert gate.promoted == ours_wins
    assert _alias("champion", name) == (ours if ours_wins else other)
    assert f"champion v{other}" in gate.decision and "same test split" in gate.decision
    assert gate.previous_champion_version == other
    assert client.get_model_version(name, ours).tags[TAG_PREVIOUS] == other


def test_a_gate_whose_champion_keeps_moving_gives_up_without_mixing_champions(tmp_path):
    """Another run moving the alias during every decision: after MAX_DECISIONS the gate keeps
    what is there, and its tags name no score of a champion it did not compare with."""
    from components.champion_gate import MAX_DECISIONS, TAG_CHAMPION

    name = "restless"
    client, options = MlflowClient(), RegisterOptions(model_name=name)
    client.create_registered_model(name)
    ours = _bare_version(client, name, tmp_path.as_uri())
    client.set_registered_model_alias(name, "champion", _bare_version(client, name,
                                                                      tmp_path.as_uri()))
    moves = []

    def rescore_while_another_run_moves_the_alias(champion):
        moved = _bare_version(client, name, tmp_path.as_uri())
        client.set_registered_model_alias(name, "champion", moved)
        moves.append(moved)
        return 0.1

    gate = apply_champion_gate(client, name, ours, 0.9, "split", options,
                               rescore=rescore_while_another_run_moves_the_alias)
    assert len(moves) == MAX_DECISIONS and not gate.promoted
    assert gate.decision.startswith(f"kept champion v{moves[-1]}: the alias moved")
    assert gate.champion_score is None and gate.previous_champion_version == moves[-1]
    tags = client.get_model_version(name, ours).tags
    assert tags[TAG_CHAMPION] == "none" and tags[TAG_PREVIOUS] == moves[-1]
    assert _alias("champion", name) == moves[-1]


def test_a_version_below_the_trivial_baseline_is_not_made_champion_unless_allowed(tmp_path):
    """Tea chips: a first version at mIoU 0.42, where the train split's majority class
    everywhere scores 0.46, became champion without a word. It is registered but not
    promoted, the decision says why, and the option promotes it when a team wants that."""
    name = "trivial"
    client, options = MlflowClient(), RegisterOptions(model_name=name)
    client.create_registered_model(name)
    first = _bare_version(client, name, tmp_path.as_uri())
    gate = apply_champion_gate(client, name, first, 0.4218, "split", options,
                               trivial_score=0.461)
    assert not gate.promoted
    assert gate.decision.startswith("no champion: miou 0.4218 does not beat the trivial "
                                    "baseline 0.4610")
    from components.champion_gate import champion_version

    assert champion_version(client, name, "champion") is None

    # Beating it: promoted as before; a later sub-trivial version keeps that champion.
    second = _bare_version(client, name, tmp_path.as_uri())
    assert apply_champion_gate(client, name, second, 0.5, "split", options,
                               trivial_score=0.461).promoted
    third = _bare_version(client, name, tmp_path.as_uri())
    kept = apply_champion_gate(client, name, third, 0.45, "split", options, trivial_score=0.461)
    assert not kept.promoted and kept.decision.startswith(f"kept champion v{second}: miou")

    allowed = RegisterOptions(model_name=name, promote_below_trivial=True)
    other = "trivial-allowed"
    client.create_registered_model(other)
    version = _bare_version(client, other, tmp_path.as_uri())
    assert apply_champion_gate(client, other, version, 0.4218, "split",
                               allowed.model_copy(update={"model_name": other}),
                               trivial_score=0.461).promoted
    assert _alias("champion", other) == version


@pytest.mark.parametrize("rule", [None, "repeats-once-v0"])
def test_a_champion_scored_under_another_scoring_rule_is_re_scored(tmp_path, rule):
    """The split digest names the tiles, not which of a scene's pixels count: a champion
    scored before the repeated-ground rule (tea chips, scene split: 147456 px, 65536 of them
    train/val ground; 81920 now) has the same digest and metric, and is re-scored."""
    from components.champion_gate import (
        TAG_GATE_METRIC,
        TAG_SCENE_SCORING,
        TAG_SPLIT,
    )
    from components.scene_repeats import SCENE_SCORING

    name = f"rule-{rule}"
    client, options = MlflowClient(), RegisterOptions(model_name=name)
    client.create_registered_model(name)
    old = _bare_version(client, name, tmp_path.as_uri())
    tags = {TAG_SPLIT: "split", TAG_GATE_METRIC: options.metric, TAG_CHALLENGER: "0.7"}
    for key, value in (tags | ({TAG_SCENE_SCORING: rule} if rule else {})).items():
        client.set_model_version_tag(name, old, key, value)
    client.set_registered_model_alias(name, options.champion_alias, old)
    new = _bare_version(client, name, tmp_path.as_uri())
    rescored = []
    gate = apply_champion_gate(client, name, new, 0.6, "split", options,
                               rescore=lambda champion: rescored.append(champion.version) or 0.5)
    assert [str(v) for v in rescored] == [old]
    assert gate.promoted and gate.champion_score == 0.5
    assert "champion re-scored on this split" in gate.decision
    assert client.get_model_version(name, new).tags[TAG_SCENE_SCORING] == SCENE_SCORING
    # A version scored under this rule is compared by its recorded score.
    third = _bare_version(client, name, tmp_path.as_uri())
    again = apply_champion_gate(client, name, third, 0.55, "split", options,
                                rescore=lambda champion: rescored.append(champion) or 0.0)
    assert not again.promoted and "same test split" in again.decision
    assert len(rescored) == 1
