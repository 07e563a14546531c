"""A worker in-process: a diverged trial is recorded as data (FAIL + status + MLflow tags), and the per-epoch
hook reports the objective and stops training when the pruner says so."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
from mlflow import MlflowClient

from cvae.trainer import EpochRecord
from studies import contract, tracking, worker
from studies.spec import load_spec
from studies.queue.storage import open_storage
from studies.queue.trials import open_study
from studies.queue.claim import prepare


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
    assert [m["event"] for m in messages] == ["start", "end"]
    assert messages[-1]["state"] == "FAIL" and messages[-1]["status"] == "diverged"

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
    hook = worker._EpochHook(trial=trial, objective="bleu4", send=lambda **m: sent.append(m), log=logged.append)
    record = EpochRecord(epoch=1, step=10, metrics={"test/bleu4": 0.1, "test/gaussian": 0.0, "test/gaussian_unique": 0.0,
                                                          "val/bleu4": 0.1, "val/gaussian": 0.0})
    assert hook(record) is True  # below the median of the finished trial at epoch 1
    assert logged == [record] and sent[0]["event"] == "epoch"
    assert study.trials[-1].intermediate_values == {1: 0.1}
    pareto = worker._EpochHook(trial=trial, objective="pareto", send=lambda **m: None, log=lambda r: None)
    assert pareto(record) is False
