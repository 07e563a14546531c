"""A worker process: claims trials, trains each with ``cvae.trainer.fit``, records it in Optuna and MLflow.

``settle`` is the one place that decides a trial's Optuna state (COMPLETE / PRUNED / FAIL) and its status.
Progress goes to the parent as small dicts over this worker's own pipe (``event``: start, epoch, end).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import optuna
import torch
from mlflow import MlflowClient
from optuna.trial import TrialState

from cvae import names
from cvae.config import ExperimentConfig
from cvae.data import Data
from cvae.device import describe, resolve_device
from cvae.scoring import Status, checkpoint_values, run_status
from cvae.trainer import Ending, EpochRecord, TrainResult, fit
from studies import contract, secrets, tracking
from studies.labels import run_name
from studies.queue.claim import claim
from studies.queue.storage import is_rdb, open_storage
from studies.spec import Spec, config_key

Send = Callable[[contract.Message], None]


@dataclass(frozen=True)
class Job:
    """What a worker process needs (pickled to it at spawn)."""

    spec: Spec
    storage: str
    study_run: tracking.StudyRun
    claim_lock: Path
    index: int
    gpu: str | None = None  # the one GPU this worker sees (CUDA_VISIBLE_DEVICES), None: the machine's view


@dataclass(frozen=True)
class Outcome:
    """How a trial ended: Optuna state and values, contract status, MLflow run status, error line."""

    state: TrialState
    status: str
    run_status: str
    values: list[float] | None = None
    error: str | None = None


def settle(*, result: TrainResult | None, error: str | None, objective: str, interrupted: bool = False) -> Outcome:
    """The single decision: fit's result (or the error that replaced it) -> Outcome."""
    if interrupted:
        return Outcome(TrialState.FAIL, Status.FAILED, "KILLED", error="interrupted")
    if result is None:
        return Outcome(TrialState.FAIL, Status.FAILED, "FAILED", error=error or "no result")
    if result.status == Status.DIVERGED:
        return Outcome(TrialState.FAIL, Status.DIVERGED, "FAILED")
    if result.status == Ending.STOPPED:
        return Outcome(TrialState.PRUNED, Status.PRUNED, "FINISHED")
    if not result.metrics:
        return Outcome(TrialState.FAIL, Status.FAILED, "FAILED", error="no evaluated epoch")
    status = run_status(status=result.status, metrics=result.metrics)
    values = checkpoint_values(result.metrics, objective=objective)
    if not all(math.isfinite(v) for v in values):
        return Outcome(TrialState.FAIL, Status.UNSTABLE, "FAILED", error=f"non-finite objective {values}")
    return Outcome(TrialState.COMPLETE, status, "FINISHED", values=values)


def quiet_logs() -> None:
    """Keep Optuna's and MLflow's INFO lines (trial finished, DB migrations) off the display."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow logs a traceback at ERROR for every SQLite "database is locked" it then retries itself (two workers
    # recording at the same moment); an error that survives its retries reaches our code as an exception
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def main(job: Job, conn: Connection) -> None:
    """Process entry point: train trials until the study has none left for this worker."""
    if job.gpu is not None:  # before anything initialises CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = job.gpu
    quiet_logs()
    secrets.hide_secrets(job.storage, job.study_run.tracking_uri)
    _die_with_parent()
    _interrupt.update(requested=False, training=False)
    previous = {sig: signal.signal(sig, _interrupt_once) for sig in (signal.SIGINT, signal.SIGTERM)}
    torch.set_num_threads(job.spec.base.train.num_threads)
    storage = open_storage(job.storage, heartbeat=job.spec.settings.heartbeat if is_rdb(job.storage) else None,
                           on_stale=partial(tracking.reconcile, job.study_run, phase=job.spec.phase))
    client = job.study_run.client()
    cache: dict[str, Data] = {}

    def send(message: contract.Message) -> None:
        try:
            conn.send(message)
        except OSError:  # the parent is gone; the study state is in storage anyway
            pass

    try:
        while not _interrupt["requested"] and (trial := claim(spec=job.spec, storage=storage,
                                                                lock=job.claim_lock,
                                                                stop=lambda: _interrupt["requested"])) is not None:
            run_trial(trial, job=job, client=client, cache=cache, send=send)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_interrupt = {"requested": False, "training": False}
"""Ctrl-C state of this worker: asked to stop; inside ``fit`` (the only place an interrupt may land)."""


def ignore_signal(signum: int, frame: object) -> None:
    """A handler that does nothing (see ``_interrupt_once``)."""


def _interrupt_once(signum: int, frame: object) -> None:
    """First Ctrl-C or SIGTERM: stop training at once (KeyboardInterrupt inside ``fit``); during a claim or while a
    trial is being recorded, stop once that is done, so no trial is left RUNNING half-recorded. Later ones are
    ignored."""
    # later signals go to a Python no-op, not SIG_IGN: a SIGTERM already pending behind this SIGINT (both arrive
    # when the process group is sent SIGTERM) would otherwise end in "Signal 15 ignored due to race condition"
    signal.signal(signal.SIGINT, ignore_signal)
    signal.signal(signal.SIGTERM, ignore_signal)
    _interrupt["requested"] = True
    if _interrupt["training"]:
        raise KeyboardInterrupt


def _die_with_parent() -> None:
    """End this worker at once when the study process dies, even by SIGKILL: an orphan would go on training
    trials that nobody watches, alongside a rerun. Its trial stays RUNNING; the rerun fails it and enqueues it."""
    parent = multiprocessing.parent_process()
    if parent is None:  # worker.main called in-process (tests)
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the spawn pipe closes: the parent has exited
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def run_trial(trial: optuna.Trial, *, job: Job, client: MlflowClient, cache: dict[str, Data], send: Send) -> Outcome:
    """Train one claimed trial and record it; never raises for a failed or diverged run."""
    started = time.perf_counter()
    timer = _Stopwatch()
    params = dict(trial.params)
    objective = job.spec.settings.objective
    trial.set_user_attr(contract.WORKER, f"{socket.gethostname()}:{os.getpid()}")
    config: ExperimentConfig | None = None
    run_id = result = error = trace = None
    interrupted = False
    try:
        config = job.spec.config_for(params)
        device = describe(resolve_device(config.train.device))
        send(contract.TrialStarted(trial=trial.number, worker=job.index, pid=os.getpid(), params=params,
                                   epochs=config.train.epochs, device=device))
        key = config_key(config)
        trial.set_user_attr(contract.CONFIG_KEY, key)
        trial.set_user_attr(contract.SEED, config.train.seed)
        varied = sorted({key for dim in job.spec.space for key in dim.targets()})
        with timer:
            run_id = tracking.start_trial(client, study_run=job.study_run, number=trial.number, config=config,
                                          key=key, searched_key=job.spec.searched_key(params),
                                          name=run_name(config.flat(), varied=varied),
                                          phase=job.spec.phase, blocks=job.spec.blocks_of(params), device=device)
        trial.set_user_attr(contract.RUN_ID, run_id)
        hook = _EpochHook(trial=trial, objective=objective, send=send,
                          log=timer.wrap(lambda record: tracking.log_epoch(client, run_id=run_id, record=record)))
        data_key = config.data.model_dump_json()
        if data_key not in cache:
            cache[data_key] = Data.load(config)
        _interrupt["training"] = True
        try:
            if _interrupt["requested"]:  # Ctrl-C came while this trial was claimed: record it as interrupted
                raise KeyboardInterrupt
            result = fit(config, callbacks=[hook], data=cache[data_key])
        finally:
            _interrupt["training"] = False
    except KeyboardInterrupt:
        interrupted = True
    except Exception as exc:  # noqa: BLE001 - any error ends this trial as FAIL, never the study
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
        trace = traceback.format_exc()
        if run_id is None:  # no run to keep it in: the worker's stderr, beside the board
            print(f"trial {trial.number} crashed before its MLflow run was made:\n{secrets.scrub(trace)}",
                  file=sys.stderr, flush=True)
        else:
            error += f" (traceback: artifact {contract.TRACEBACK_ARTIFACT} of MLflow run {run_id})"
    outcome = settle(result=result, error=error, objective=objective, interrupted=interrupted)
    if run_id is not None:
        try:
            with timer:
                tracking.finish_trial(client, run_id=run_id, result=result, config=config, state=outcome.state.name,
                                      status=outcome.status, run_status=outcome.run_status, error=outcome.error,
                                      wall_time_s=time.perf_counter() - started, trace=trace)
        except Exception as exc:  # noqa: BLE001 - unrecorded in MLflow: failed, tried again on the next run
            print(f"trial {trial.number}: recording in MLflow failed:\n{secrets.scrub(traceback.format_exc())}",
                  file=sys.stderr, flush=True)
            outcome = settle(result=None, error=f"recording in MLflow failed: {exc}"[:500], objective=objective)
    attrs = {**_trial_attrs(result, outcome), contract.TRACKING_S: timer.seconds,
             contract.WALL_S: time.perf_counter() - started}
    for name, value in attrs.items():
        trial.set_user_attr(name, value)
    trial.study.tell(trial, outcome.values, state=outcome.state)
    send(contract.TrialEnded(trial=trial.number, state=outcome.state.name, values=outcome.values,
                             seconds=time.perf_counter() - started, attrs=attrs))
    if interrupted:
        raise KeyboardInterrupt
    return outcome


def _trial_attrs(result: TrainResult | None, outcome: Outcome) -> dict[str, Any]:
    """User attrs of a finished trial: status, error, chosen-checkpoint figures, divergence step and cause."""
    attrs: dict[str, Any] = {contract.STATUS: outcome.status}
    if outcome.error:
        attrs[contract.ERROR] = outcome.error
    if result is not None:
        if result.best_epoch is not None:
            attrs[contract.BEST_EPOCH] = result.best_epoch
            attrs.update({contract.best(key): result.metrics.get(key, math.nan) for key in contract.TRIAL_FIGURES})
        if result.status == Status.DIVERGED:
            attrs.update({contract.DIVERGED_STEP: result.diverged_step,
                          contract.DIVERGENCE_CAUSE: result.divergence_cause})
    return attrs


class _Stopwatch:
    """Adds up the seconds spent inside its ``with`` blocks and wrapped calls (here: MLflow calls)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> "_Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)
        return timed


@dataclass
class _EpochHook:
    """fit callback: batch the epoch to MLflow, tell the parent, report the objective and ask the pruner."""

    trial: optuna.Trial
    objective: str
    send: Send
    log: Callable[[EpochRecord], None]

    def __call__(self, record: EpochRecord) -> bool:
        self.log(record)
        metrics = record.metrics
        self.send(contract.EpochDone(trial=self.trial.number, epoch=record.epoch, bleu4=metrics[names.TEST_BLEU],
                                     gaussian_unique=metrics[names.TEST_GAUSSIAN_UNIQUE]))
        if self.objective == "pareto":
            return False
        self.trial.report(checkpoint_values(metrics, objective=self.objective)[0], record.epoch)
        return bool(self.trial.should_prune())
