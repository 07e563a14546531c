"""The Optuna side: storage, study create/resume, and the queue of (configuration, seed) trials.

One Optuna trial = one (configuration, seed); its params are the searched keys plus ``train.seed``.
- grid: before the workers start, the parent enqueues every (configuration, seed) of the grid in grid order.
  (Optuna's GridSampler is not used: it picks grid points at random and re-runs points under concurrency.)
- tpe / random: a worker that finds the queue empty lets the sampler draw a new configuration for the first
  seed and enqueues the same params with every other seed; a configuration drawn twice is pruned unrun.
Every change to the queue (create, enqueue, claim, failing dead trials) happens under ``study_lock``, so no two
workers draw a configuration or enqueue one twice: a PostgreSQL advisory lock (MySQL named lock) for those
storages, shared by every machine that runs the study; a file lock for a journal or SQLite (one machine).

Dead workers. A journal study has one ``studies.run`` at a time (its parent holds a file lock): trials it finds
RUNNING at start (``prepare``) were left by a process that died, so they are failed and enqueued again. An RDB
study may be run by any number of ``studies.run`` on any number of machines at once, so a RUNNING trial may be
alive elsewhere: a trial is dead only when its heartbeat stops (Optuna's heartbeat, ``study.heartbeat`` seconds,
beaten by a thread of the worker that claimed it). Any process that takes the lock fails the trials that missed
``GRACE`` heartbeats, and ``Requeue`` enqueues each one's (configuration, seed) again, with the same params.
A (configuration, seed) is done when COMPLETE, PRUNED, diverged or unstable (FAIL with that user attr status); one that
failed for any other reason is tried again on the next run.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from studies import contract
from studies.queue.heartbeat import fail_stale, requeue_of, start_heartbeat, stop_heartbeat
from studies.queue.locks import study_lock
from studies.queue.trials import covered, item_key, load_study, sampled_configs, suggest
from studies.spec import SEED_KEY, Spec

MAX_DRAWS = 50
"""Draws a worker makes for a configuration not sampled before, before it stops drawing."""


def prepare(*, study: optuna.Study, spec: Spec) -> list[FrozenTrial]:
    """Before the workers start (under ``study_lock``): fail the trials whose worker died (returned) and enqueue
    every (configuration, seed) not covered. Dead: RUNNING with a stopped heartbeat (RDB), or RUNNING at all
    (journal: one process runs the study at a time)."""
    if requeue_of(study) is not None:
        stale = fail_stale(study)
    else:
        stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in stale:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    if spec.settings.sampler == "grid" or not spec.space:
        configs = spec.grid_configs()
    else:
        configs = sampled_configs(study.get_trials(deepcopy=False), spec)
    enqueue_missing(study=study, spec=spec, configs=configs)
    return stale


def pending(*, study: optuna.Study, spec: Spec) -> int:
    """Trials still to train: those waiting plus the seeds of configurations not drawn yet."""
    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    if spec.settings.sampler == "grid" or not spec.space:
        return waiting
    return waiting + max(0, spec.n_configs - len(sampled_configs(trials, spec))) * len(spec.settings.seeds)


def enqueue_missing(*, study: optuna.Study, spec: Spec, configs: list[dict[str, Any]]) -> int:
    """Enqueue (configuration, seed) for every seed of ``configs`` not waiting, running or done."""
    taken = covered(study.get_trials(deepcopy=False))
    added = 0
    for config in configs:
        for seed in spec.settings.seeds:
            params = {**config, SEED_KEY: seed}
            if item_key(params) not in taken:
                study.enqueue_trial(params)
                taken.add(item_key(params))
                added += 1
    return added


def claim(*, spec: Spec, storage: BaseStorage, lock: Path,
          stop: Callable[[], bool] | None = None) -> optuna.Trial | None:
    """The next trial for this worker (RUNNING, all params suggested), or None when the study is done.

    With a heartbeat (RDB): dead trials are failed and enqueued again first; the claimed trial beats from a
    thread of this process until its next claim; and while nothing is left to claim but trials still run
    (elsewhere), this waits, polling once a heartbeat, to take over any whose worker dies: the study ends complete
    as long as one worker is left. ``stop()`` true ends the wait with None (Ctrl-C)."""
    stop_heartbeat()
    heartbeat = getattr(storage, "heartbeat_interval", None)
    while True:
        with study_lock(storage, spec.name, fallback=lock):
            study = load_study(spec=spec, storage=storage)
            if heartbeat:
                fail_stale(study)
            trial = _next_trial(spec=spec, storage=storage, study=study)
            if trial is not None:
                if heartbeat:
                    start_heartbeat(storage, trial._trial_id)  # type: ignore[arg-type]  # noqa: SLF001 - an RDB's
                return trial
            if not heartbeat or not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                return None
        if stop is not None and stop():
            return None
        time.sleep(heartbeat)


def _next_trial(*, spec: Spec, storage: BaseStorage, study: optuna.Study) -> optuna.Trial | None:
    """A waiting trial, or a new configuration drawn by the sampler (tpe/random); None when none is left."""
    for _ in range(MAX_DRAWS):
        trials = study.get_trials(deepcopy=False)
        fresh = not any(t.state == TrialState.WAITING for t in trials)
        if fresh:
            if spec.settings.sampler == "grid" or len(sampled_configs(trials, spec)) >= spec.n_configs:
                return None
            # a new configuration: first seed fixed, the rest drawn by a sampler seeded by the trial count
            study = load_study(spec=spec, storage=storage, sampler_seed=spec.settings.sampler_seed + len(trials))
            study.enqueue_trial({SEED_KEY: spec.settings.seeds[0]})
        with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat ourselves
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        params = suggest(trial, spec=spec)
        config = {k: v for k, v in params.items() if k != SEED_KEY}
        if fresh and config in sampled_configs(trials, spec):
            trial.set_user_attr(contract.STATUS, contract.DUPLICATE)
            study.tell(trial, state=TrialState.PRUNED)
            continue
        if fresh:
            enqueue_missing(study=study, spec=spec, configs=[config])
        return trial
    return None


