"""Dead workers on any machine: Optuna's heartbeat, failing the trials that stopped beating and enqueueing
them again."""

from __future__ import annotations

import atexit
import logging
import threading
import warnings
from collections.abc import Callable

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from studies.queue.trials import covered, item_key, trial_params

GRACE = 3
"""Heartbeats a RUNNING trial may miss before another process fails it (Optuna's grace period, in heartbeats)."""


MAX_RETRY = 3
"""Times one trial is enqueued again after its worker died, within a run (every new run enqueues what is missing)."""


log = logging.getLogger(__name__)


class Requeue:
    """An RDB storage's stale-trial callback (Optuna calls it for each trial it fails for a stopped heartbeat):
    enqueue the trial's (configuration, seed) again with the same params, as ``RetryHeartbeatStaleTrialCallback``
    does (at most ``MAX_RETRY`` times for one trial), unless it is waiting, running or done already; then tell
    ``on_stale(failed=[its number])`` (a worker's: ``studies.tracking.reconcile``, which ends its MLflow run). Only
    called by ``fail_stale``, under ``study_lock``: never twice for a trial."""

    def __init__(self, on_stale: Callable[..., object] | None = None) -> None:
        self.on_stale = on_stale
        self.failed: list[FrozenTrial] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.failed.append(trial)
        if item_key(trial_params(trial)) not in covered(study.get_trials(deepcopy=False)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                self._retry(study, trial)
        if self.on_stale is not None:
            try:
                self.on_stale(failed=[trial.number])
            except Exception as exc:  # noqa: BLE001 - the next studies.run start or end marks it instead
                log.warning("trial %d: could not mark its MLflow run FAILED: %s", trial.number, exc)


def requeue_of(study: optuna.Study) -> Requeue | None:
    """The study storage's ``Requeue`` when it has a heartbeat, else None."""
    storage = study._storage  # noqa: SLF001 - the storage optuna.storages.fail_stale_trials reads too
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is None:
        return None
    callback = storage.get_heartbeat_stale_trial_callback()  # type: ignore[attr-defined]  # has a heartbeat
    return callback if isinstance(callback, Requeue) else None


def fail_stale(study: optuna.Study) -> list[FrozenTrial]:
    """Fail the RUNNING trials whose heartbeat stopped (their worker died, on any machine), each enqueued again
    by ``Requeue``; -> those trials. Nothing without a heartbeat. Call it under ``study_lock``."""
    requeue = requeue_of(study)
    if requeue is None:
        return []
    requeue.failed.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return list(requeue.failed)


_beating: list[tuple[threading.Event, threading.Thread]] = []
"""This process's heartbeat thread (at most one: a worker trains one trial at a time)."""


def start_heartbeat(storage: RDBStorage, trial_id: int) -> None:
    """Beat now (under the claim's lock: a claimed trial is never without a heartbeat), then from a daemon thread
    every heartbeat until the next claim or exit. Beating a finished trial is harmless: only RUNNING ones go stale."""
    storage.record_heartbeat(trial_id)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(storage.heartbeat_interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception as exc:  # noqa: BLE001 - the next beat tries again; the grace period covers a few
                log.warning("heartbeat of trial id %d failed: %s", trial_id, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    _beating.append((stop, thread))


def stop_heartbeat() -> None:
    while _beating:
        stop, thread = _beating.pop()
        stop.set()
        thread.join(timeout=10)


atexit.register(stop_heartbeat)
