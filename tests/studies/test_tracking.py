"""studies.tracking: the MLflow runs a study writes: its trial runs and their tags."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import tiny_config


def test_trial_runs_are_tagged_with_their_device(tmp_path: Path):
    from mlflow import MlflowClient

    from studies import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("devices")
    parent = client.create_run(experiment).info.run_id
    study_run = tracking.StudyRun(tracking_uri=uri, experiment_id=experiment, parent_run_id=parent, study="devices")
    run_id = tracking.start_trial(client, study_run=study_run, number=0, config=tiny_config(), key="k", device="cpu")
    assert client.get_run(run_id).data.tags["cvae.device"] == "cpu"
