"""A worker in-process: a diverged trial is recorded as data (FAIL + status + MLflow tags), the per-epoch hook
reports the objective and stops training when the pruner says so, and ``settle`` is the one decision of how a
trial ends."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from cvae.trainer import EpochRecord, TrainResult
from studies import contract, tracking, worker
from studies.queue.claim import prepare
from studies.queue.storage import open_storage
from studies.queue.trials import open_study
from studies.spec import load_spec
from studies.worker import settle


def test_diverged_trial_is_a_recorded_failure_not_a_crash(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml", overrides=["optim.name=sgd", "optim.lr=1000", "optim.clip_norm=null",
                                              "study.seeds=[0]", "search.kl={choices: [{schedule: constant}]}"])
    journal = str(tmp_path / "s.journal")
    study = open_study(spec=spec, storage=open_storage(journal), label="test")
    prepare(study=study, spec=spec)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    study_run = tracking.start_study(tracking_uri=uri, study=spec.name, objective="bleu4+gaussian",
                                     spec_path=spec.path, storage=journal)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    worker.main(worker.Job(spec=spec, storage=journal, study_run=study_run, claim_lock=tmp_path / "lock", index=1),
                sender)
    messages = []
    while receiver.poll():
        try:
            messages.append(receiver.recv())
        except EOFError:  # the worker closed its end
            break
    assert [type(m) for m in messages] == [contract.TrialStarted, contract.TrialEnded]
    assert messages[-1].state == "FAIL" and messages[-1].attrs["status"] == "diverged"

    (trial,) = study.get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["status"] == "diverged" and trial.user_attrs["diverged_step"] >= 1
    assert "non-finite" in trial.user_attrs["divergence_cause"]
    assert set(trial.user_attrs) <= set(contract.TRIAL_ATTRS)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(trial.user_attrs["mlflow_run_id"])
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FAILED"
    assert (tags["optuna.state"], tags["cvae.status"]) == ("FAIL", "diverged")
    assert int(tags["cvae.diverged_step"]) == trial.user_attrs["diverged_step"]
    assert tags["cvae.divergence_cause"] == trial.user_attrs["divergence_cause"]
    assert metrics["run/diverged"] == 1 and metrics["run/epochs_done"] == 0
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["config.yaml"]


def test_epoch_hook_reports_and_prunes() -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, value=0.9,
                                              intermediate_values={1: 0.9}))
    trial = study.ask()
    sent, logged = [], []
    hook = worker._EpochHook(trial=trial, objective="bleu4", send=sent.append, log=logged.append)
    record = EpochRecord(epoch=1, step=10, metrics={"test/bleu4": 0.1, "test/gaussian": 0.0, "test/gaussian_unique": 0.0,
                                                          "val/bleu4": 0.1, "val/gaussian": 0.0})
    assert hook(record) is True  # below the median of the finished trial at epoch 1
    assert logged == [record] and sent == [contract.EpochDone(trial=trial.number, epoch=1, bleu4=0.1,
                                                              gaussian_unique=0.0)]
    assert study.trials[-1].intermediate_values == {1: 0.1}
    pareto = worker._EpochHook(trial=trial, objective="pareto", send=lambda m: None, log=lambda r: None)
    assert pareto(record) is False


def result(status: str, metrics: dict[str, float] | None = None) -> TrainResult:
    config = load_spec("smoke.yaml").base
    return TrainResult(status=status, config=config, best_epoch=1 if metrics else None, metrics=metrics or {},
                       history=[], state_dict=None, samples={}, steps=3, wall_time_s=0.1)


GOOD = {"test/bleu4": 0.6, "test/gaussian": 0.3, "test/gaussian_unique": 0.3, "val/bleu4": 0.6,
        "val/gaussian": 0.3, "latent/kl": 8.0, "latent/active_units": 8.0, "latent/logvar_absmax": 2.0}


@pytest.mark.parametrize("train_result, error, interrupted, expected", [
    (result("ok", GOOD), None, False, (TrialState.COMPLETE, "weak", "FINISHED", [0.9])),
    (result("ok", {**GOOD, "test/bleu4": 0.8}), None, False, (TrialState.COMPLETE, "works", "FINISHED", [0.9])),
    (result("ok", {**GOOD, "latent/kl": 0.01}), None, False, (TrialState.COMPLETE, "collapsed", "FINISHED", [0.9])),
    (result("ok", {**GOOD, "latent/kl": 200.0, "test/gaussian_unique": 0.0, "val/gaussian": 0.0}), None, False,
     (TrialState.COMPLETE, "prior_hole", "FINISHED", [0.6])),
    (result("ok", {**GOOD, "latent/kl": 8e12}), None, False, (TrialState.COMPLETE, "unstable", "FINISHED", [0.9])),
    (result("collapsed", GOOD), None, False, (TrialState.COMPLETE, "collapsed", "FINISHED", [0.9])),
    (result("diverged"), None, False, (TrialState.FAIL, "diverged", "FAILED", None)),
    (result("stopped", GOOD), None, False, (TrialState.PRUNED, "pruned", "FINISHED", None)),
    (None, "RuntimeError: boom", False, (TrialState.FAIL, "failed", "FAILED", None)),
    (None, None, True, (TrialState.FAIL, "failed", "KILLED", None)),
])
def test_settle_is_the_one_state_decision(train_result, error, interrupted, expected) -> None:
    outcome = settle(result=train_result, error=error, objective="bleu4+gaussian", interrupted=interrupted)
    values = None if outcome.values is None else [pytest.approx(v) for v in outcome.values]
    assert (outcome.state, outcome.status, outcome.run_status, values) == expected


def test_a_trial_that_crashes_deep_in_training_keeps_its_whole_traceback_in_its_run(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """A bug in the middle of an epoch fails that trial, never the study; its MLflow run holds the full traceback
    (``traceback.txt``) and its one-line error says where that is."""
    import cvae.losses

    def broken(*args, **kwargs):
        raise RuntimeError("a bug deep inside the loss")

    monkeypatch.setattr(cvae.losses, "reconstruction", broken)
    monkeypatch.setattr("cvae.trainer.loss_terms", lambda *a, **k: cvae.losses.reconstruction(None, None))
    spec = load_spec("smoke.yaml", overrides=["study.seeds=[0]", "search.kl={choices: [{schedule: constant}]}"])
    journal = str(tmp_path / "s.journal")
    study = open_study(spec=spec, storage=open_storage(journal), label="test")
    prepare(study=study, spec=spec)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    study_run = tracking.start_study(tracking_uri=uri, study=spec.name, objective="bleu4+gaussian",
                                     spec_path=spec.path, storage=journal)
    _, sender = multiprocessing.Pipe(duplex=False)
    worker.main(worker.Job(spec=spec, storage=journal, study_run=study_run, claim_lock=tmp_path / "lock", index=1),
                sender)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["status"] == "failed"
    run_id = trial.user_attrs["mlflow_run_id"]
    assert trial.user_attrs["error"].startswith("RuntimeError: a bug deep inside the loss")
    assert f"traceback: artifact traceback.txt of MLflow run {run_id}" in trial.user_attrs["error"]
    client = MlflowClient(tracking_uri=uri)
    assert "traceback.txt" in [a.path for a in client.list_artifacts(run_id)]
    text = Path(client.download_artifacts(run_id, "traceback.txt", str(tmp_path))).read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert "in fit" in text and "in train_epoch" in text and "in broken" in text
    assert text.rstrip().endswith("RuntimeError: a bug deep inside the loss")
