"""studies.testing: synthetic trials that follow the tracking contract, deterministic from config and seed, and
written to a real MLflow store as a study writes them."""

from __future__ import annotations

from mlflow import MlflowClient

from studies import contract
from studies.testing import GAMING, STEP_KEYS, demo_trials, failures_only_trials, make_trial, scale_trials


def test_a_trial_is_the_same_for_the_same_config_and_seed_and_differs_for_another_seed():
    first = make_trial(number=0, overrides={"optim.lr": 0.01}, seed=0, status="works", epochs=3)
    again = make_trial(number=0, overrides={"optim.lr": 0.01}, seed=0, status="works", epochs=3)
    other = make_trial(number=1, overrides={"optim.lr": 0.01}, seed=1, status="works", epochs=3)
    assert first.history == again.history and first.history != other.history
    assert first.config_key == other.config_key and set(first.history) == set(STEP_KEYS)
    assert all(len(values) == 3 for values in first.history.values())


def test_each_status_logs_what_a_study_would():
    works = make_trial(number=0, overrides={}, seed=0, status="works", epochs=4)
    assert works.best[contract.BEST_EPOCH] == float(works.tags["cvae.best_epoch"])
    assert works.final["run/epochs_done"] == 4
    assert set(works.best) - {contract.BEST_EPOCH} <= {contract.best(key) for key in contract.BEST_FIGURES}
    failed = make_trial(number=1, overrides={}, seed=0, status="failed")
    assert failed.history == {} and failed.best == {} and failed.final == {}
    early = make_trial(number=2, overrides={}, seed=0, status="diverged", diverge_epoch=1)
    assert early.best == {} and "run/grad_norm_max" not in early.final and early.final["run/diverged"] == 1.0
    assert "non-finite gradient" in early.tags["cvae.divergence_cause"]
    pruned = make_trial(number=3, overrides={}, seed=0, status="pruned", epochs=4)
    assert pruned.best == {} and pruned.tags["optuna.state"] == "PRUNED" and pruned.final["run/epochs_done"] == 2


def test_the_canned_studies_hold_what_their_tests_need():
    statuses = {trial.status for trial in demo_trials()}
    assert statuses == {"works", "weak", "diverged", "collapsed", "prior_hole", "pruned", "failed"}
    gaming = [t for t in demo_trials() if t.params["optim.lr"] == GAMING["optim.lr"]]
    assert len(gaming) == 2 and all(t.best["best/val/bleu4"] == 0.99 for t in gaming)
    assert all(not trial.best for trial in failures_only_trials())
    scale = scale_trials(30)
    assert len(scale) == 30 and [t.number for t in scale] == list(range(30))
    assert [t.history for t in scale] == [t.history for t in scale_trials(30)]


def test_write_study_logs_a_parent_and_one_run_per_trial(demo):
    client = MlflowClient(demo["uri"])
    experiment = client.get_experiment_by_name("demo").experiment_id
    runs = {run.info.run_id: run for run in client.search_runs([experiment], max_results=100)}
    parent = runs.pop(demo["parent_run_id"])
    assert parent.data.tags["cvae.role"] == "study" and len(runs) == len(demo["trials"])
    for trial in demo["trials"]:
        run = runs[trial.run_id]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cvae.status"] == trial.status
        assert run.info.status == ("FAILED" if trial.status == "failed" else "FINISHED")
        assert run.data.metrics == {**{key: values[-1] for key, values in trial.history.items()}, **trial.best,
                                    **trial.final}
