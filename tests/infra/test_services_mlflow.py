"""MLflow as a team runs it: a tracking server on PostgreSQL with artifacts proxied to S3."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.services


def test_run_lands_in_postgres_and_its_artifacts_in_the_bucket(services, s3_client, tmp_path):
    import mlflow
    import psycopg2
    from mlflow.tracking import MlflowClient
    from sqlalchemy.engine import make_url

    mlflow.set_tracking_uri(services["MLFLOW_TRACKING_URI"])
    experiment = mlflow.set_experiment(f"infra-test-{uuid.uuid4().hex[:8]}")
    # Proxied artifact storage: clients see mlflow-artifacts:, only the server holds S3 keys.
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    report = tmp_path / "report.md"
    report.write_text("# mIoU 0.5\n")
    with mlflow.start_run() as run:
        mlflow.log_param("architecture", "unet")
        mlflow.log_metric("val_miou", 0.5, step=1)
        mlflow.log_artifact(str(report), artifact_path="evaluation")
    run_id = run.info.run_id

    keys = [
        item["Key"]
        for item in s3_client.list_objects_v2(
            Bucket=services["SEGPIPE_ARTIFACT_BUCKET"],
            Prefix=services["SEGPIPE_ARTIFACT_PREFIX"] + "/",
        ).get("Contents", [])
    ]
    (key,) = [key for key in keys if run_id in key and key.endswith("evaluation/report.md")]
    body = s3_client.get_object(Bucket=services["SEGPIPE_ARTIFACT_BUCKET"], Key=key)["Body"]
    assert body.read() == report.read_bytes()

    downloaded = MlflowClient().download_artifacts(run_id, "evaluation", str(tmp_path / "back"))
    assert (tmp_path / "back" / "evaluation" / "report.md").read_text() == "# mIoU 0.5\n"
    assert downloaded.endswith("evaluation")

    # The run itself is a row in the server's PostgreSQL database.
    # Same server and user as Optuna's storage; the password comes from PGPASSWORD.
    database = make_url(services["OPTUNA_STORAGE"])
    with psycopg2.connect(
        host=database.host, port=database.port, user=database.username, dbname="mlflow"
    ) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (run_id,))
        assert cursor.fetchone() == ("FINISHED",)
        cursor.execute("SELECT value FROM params WHERE run_uuid = %s", (run_id,))
        assert cursor.fetchall() == [("unet",)]
