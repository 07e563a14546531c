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


def _start(uri: str, study: str, spec_path: str, barrier) -> None:  # noqa: ANN001 - a multiprocessing.Barrier
    from studies import tracking

    barrier.wait()
    tracking.start_study(tracking_uri=uri, study=study, objective="bleu4+gaussian", spec_path=Path(spec_path),
                         storage="s.journal")


def test_studies_started_at_once_in_a_new_project_all_start(tmp_path: Path):
    """Each study's first step builds mlflow.db's tables if it has none: started side by side in a fresh project,
    the second failed half-way (SQLAlchemy's CircularDependencyError) until the schema was built under a lock."""
    import multiprocessing

    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\n")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [context.Process(target=_start, args=(uri, f"study{i}", str(spec), barrier)) for i in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    names = {e.name for e in MlflowClient(tracking_uri=uri).search_experiments()}
    assert {"study0", "study1", "study2"} <= names
