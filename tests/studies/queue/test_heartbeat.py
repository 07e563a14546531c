"""studies.queue.heartbeat: a trial whose worker died is enqueued again once (same params), its run marked
through the hook; a study without a heartbeat (a journal) has no stale trials."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from studies.queue.heartbeat import Requeue, fail_stale, requeue_of
from studies.queue.storage import open_storage
from studies.queue.trials import trial_params

DISTRIBUTIONS = {"kl": CategoricalDistribution(["a", "b"]), "train.seed": CategoricalDistribution([0, 1])}


def dead_trial(study: optuna.Study, kl: str) -> optuna.trial.FrozenTrial:
    """A trial failed for a stopped heartbeat (as Optuna hands it to the callback)."""
    study.add_trial(create_trial(state=TrialState.FAIL, params={"kl": kl, "train.seed": 0},
                                 distributions=DISTRIBUTIONS))
    return study.get_trials()[-1]


def test_a_dead_trial_is_enqueued_again_with_its_params_and_reported() -> None:
    study = optuna.create_study()
    told: list[list[int]] = []
    requeue = Requeue(on_stale=lambda failed: told.append(failed))
    dead = dead_trial(study, "a")
    requeue(study, dead)
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert [trial_params(t) for t in waiting] == [{"kl": "a", "train.seed": 0}]
    assert told == [[dead.number]] and requeue.failed == [dead]


def test_a_dead_trial_already_waiting_again_is_not_enqueued_twice() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"kl": "b", "train.seed": 0})
    Requeue()(study, dead_trial(study, "b"))
    assert sum(t.state == TrialState.WAITING for t in study.get_trials()) == 1


def test_a_failing_hook_is_logged_not_raised(caplog) -> None:
    study = optuna.create_study()

    def broken(failed):
        raise RuntimeError("tracking down")

    Requeue(on_stale=broken)(study, dead_trial(study, "a"))
    assert "could not mark its MLflow run FAILED: tracking down" in caplog.text


def test_only_a_storage_with_a_heartbeat_has_stale_trials(tmp_path: Path) -> None:
    journal = optuna.create_study(storage=open_storage(str(tmp_path / "s.journal")))
    assert requeue_of(journal) is None and fail_stale(journal) == []
    storage = open_storage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat=5)
    rdb = optuna.create_study(storage=storage)
    assert isinstance(requeue_of(rdb), Requeue) and fail_stale(rdb) == []
    storage.engine.dispose()
