from mlflow import MlflowClient


def test_the_summary_shows_the_trivial_baseline_and_why_a_version_is_not_champion(tmp_path,
                                                                                  capsys):
    """Tea chips: 'test mIoU 0.4218 ... registered tea version 1 (now champion)' said nothing
    of the 0.461 the majority class everywhere scores; now the line holds the baseline, and a
    version the gate did not promote comes with the gate's reason."""
    from components.champion_gate import TAG_DECISION
    from pipelines.cli.run import _summary
    from pipelines.local_run import LocalRunResult

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}?timeout=60"  # as a local run's store
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("summary"))
    client.log_metric(run.info.run_id, "test_trivial_miou", 0.461)
    decision = "no champion: miou 0.4218 does not beat the trivial baseline 0.4610 (...)"
    client.set_tag(run.info.run_id, TAG_DECISION, decision)
    result = LocalRunResult(test_miou=0.4218, model_version="1", champion_version="none",
                            mlflow_run_id=run.info.run_id, run_name="tea", kfp_run_name="k",
                            tracking_uri=uri, model_name="tea", log_path=tmp_path / "run.log",
                            seconds=3.0, resumed=False, test_tile_miou=0.4257)
    _summary(result)
    out = capsys.readouterr().out
    assert ("test mIoU         0.4218  (whole test scenes, as served; tile by tile 0.4257; "
            "trivial baseline 0.4610)\n") in out
    assert f"gate              {decision}\n" in out
    assert "registered        tea version 1 (challenger; no champion)\n" in out

    # A store that is not there is not created by the summary, which goes without them.
    missing = tmp_path / "none.db"
    _summary(LocalRunResult(**{**result.__dict__, "tracking_uri": f"sqlite:///{missing}"}))
    out = capsys.readouterr().out
    assert "tile by tile 0.4257)\n" in out and "gate" not in out and not missing.exists()
