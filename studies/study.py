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

import atexit
import fcntl
import hashlib
import json
import logging
import sqlite3
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from cvae.config import ConfigError, check_output
from cvae.names import VAL_BLEU, VAL_GAUSSIAN
from cvae.scoring import STATUSES, objective_score, rank
from studies import contract
from studies.spec import SEED_KEY, Spec
from studies.secrets import redact
from studies.tracking import MLFLOW_TABLES, sqlite_file, sqlite_tables

RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
MAX_DRAWS = 50
"""Draws a worker makes for a configuration not sampled before, before it stops drawing."""
GRACE = 3
"""Heartbeats a RUNNING trial may miss before another process fails it (Optuna's grace period, in heartbeats)."""
MAX_RETRY = 3
"""Times one trial is enqueued again after its worker died, within a run (every new run enqueues what is missing)."""
LOCKING_DIALECTS = ("postgresql", "mysql", "mariadb")
"""Databases whose own locks serialise the queue across machines."""
log = logging.getLogger(__name__)


def default_journal(study: str) -> Path:
    """The default storage: a journal file under the working directory's mlruns/ (safe across processes)."""
    return Path("mlruns") / "optuna" / f"{study}.journal"


OWN_STORAGE = ("leave --storage out (the default, mlruns/optuna/STUDY.journal), or pass a journal file or another "
               "database, e.g. --storage study.journal")
"""What to pass instead of a storage that cannot be the study's."""


def check_storage(target: str, *, tracking_uri: str | None = None) -> None:
    """An RDB URL with a known scheme, or a journal file path that can be written; a one-line ConfigError otherwise,
    and for what would damage another store: an empty value (an unset variable), the MLflow tracking database
    (``tracking_uri``) or any database of MLflow's, a file that is not an Optuna journal. Writes nothing."""
    if not target.strip():
        raise ConfigError(f"--storage '': empty (an unset variable?); {OWN_STORAGE}")
    shown = redact(target)
    tracking_db = sqlite_file(tracking_uri or "")
    if "://" in target:
        scheme = target.split("://", 1)[0]
        if scheme.split("+", 1)[0] not in RDB_SCHEMES:
            raise ConfigError(f"--storage {shown}: unsupported URL scheme {scheme!r}; use sqlite:///FILE.db, "
                              "postgresql+psycopg://USER@HOST/DB, or a journal file path")
        if scheme != "sqlite":
            return
        path = sqlite_file(target)
        if path is None:
            raise ConfigError(f"--storage {shown}: expected sqlite:///FILE.db (a file, not in memory)")
        if not path.parent.is_dir():
            raise ConfigError(f"--storage {shown}: folder {path.parent} does not exist")
        if path.is_dir():
            raise ConfigError(f"--storage {shown}: {path} is a folder; {OWN_STORAGE}")
    else:
        path = Path(target)
        if path.is_dir():
            raise ConfigError(f"--storage {shown}: is a folder; give a journal file path or an RDB URL")
    if tracking_db is not None and path.resolve() == tracking_db.resolve():
        raise ConfigError(f"--storage {shown}: is the MLflow tracking database (--tracking-uri); {OWN_STORAGE}")
    check_output(path, flag="--storage")
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        tables = sqlite_tables(path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"--storage {shown}: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if tables is not None and set(MLFLOW_TABLES) <= tables:
        raise ConfigError(f"--storage {shown}: {path} is an MLflow tracking database; {OWN_STORAGE}")
    if "://" in target and tables is None:
        raise ConfigError(f"--storage {shown}: {path} is not an SQLite database; {OWN_STORAGE}")
    if "://" not in target:
        if tables is not None:
            raise ConfigError(f"--storage {shown}: is an SQLite database, not an Optuna journal; for a database "
                              f"storage pass --storage sqlite:///{path}")
        _check_journal(path, shown=shown)


def _check_journal(path: Path, *, shown: str) -> None:
    """An existing journal's first line is an Optuna journal record (a JSON object with an `op_code`)."""
    with path.open("rb") as handle:
        first = handle.readline(65536)
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise ConfigError(f"--storage {shown}: line 1: not an Optuna journal (its records are JSON lines); "
                          f"{OWN_STORAGE}")


def storage_label(target: str) -> str:
    """How a storage is shown and logged: the URL with its password redacted, or the journal's absolute path."""
    return redact(target) if "://" in target else str(Path(target).resolve())


def is_rdb(target: str) -> bool:
    """Whether a ``--storage`` value is an RDB URL (else a journal file path)."""
    return "://" in target


def open_storage(target: str, *, heartbeat: int | None = None,
                 on_stale: Callable[..., object] | None = None) -> BaseStorage:
    """RDB storage for a URL, else a journal file (created with its folder); a one-line ConfigError on failure.

    ``heartbeat`` (RDB): Optuna's heartbeat every that many seconds, a grace period of ``GRACE`` heartbeats, and
    ``Requeue(on_stale)`` for the trials it finds dead (``on_stale(failed=[trial number])``). The schema is
    created under a database lock, so processes that open a fresh PostgreSQL database at once do not collide."""
    try:
        if is_rdb(target):
            with _schema_lock(target), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval is "experimental"
                if heartbeat is None:
                    return RDBStorage(target)
                return RDBStorage(target, heartbeat_interval=heartbeat, grace_period=GRACE * heartbeat,
                                  heartbeat_stale_trial_callback=Requeue(on_stale))
        path = Path(target).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=FileLock(path.with_name(path.name + ".lock"))))
    except Exception as exc:  # noqa: BLE001 - unreachable database, bad credentials: one line, not a traceback
        password = urlsplit(target).password if "://" in target else None
        reason = " ".join(str(exc).replace(password or "\0", "***").split())[:300]
        raise ConfigError(f"--storage {storage_label(target)}: cannot open: {type(exc).__name__}: {reason}") from None


class FileLock:
    """An exclusive ``flock`` on a file. The kernel releases it when its holder dies, so a killed worker never
    leaves a stale lock behind (Optuna's own journal locks wait out a grace period, and its symlink lock spins
    forever on a relative journal path). Also serves as the journal backend's lock (acquire / release)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def acquire(self, blocking: bool = True) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextmanager
def _database_lock(engine: sqlalchemy.Engine, name: str) -> Iterator[None]:
    """An exclusive lock ``name`` held by a session of the database server (PostgreSQL advisory lock, MySQL
    named lock): shared by every machine that uses the database, and released by the server when the session
    ends, so a process killed while holding it never leaves it behind."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    if engine.dialect.name == "postgresql":
        lock, unlock, params = "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)", {"key": key}
    else:
        lock, unlock, params = "SELECT GET_LOCK(:key, -1)", "SELECT RELEASE_LOCK(:key)", {"key": f"cvae-{key:x}"}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sqlalchemy.text(lock), params)
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text(unlock), params)


def _schema_lock(target: str):  # noqa: ANN202 - a context manager
    """Held while an RDB storage creates or upgrades its tables (a database lock; nothing for SQLite)."""
    if urlsplit(target).scheme.split("+", 1)[0] not in LOCKING_DIALECTS:
        return nullcontext()

    @contextmanager
    def held() -> Iterator[None]:
        engine = sqlalchemy.create_engine(target, poolclass=sqlalchemy.pool.NullPool)
        try:
            with _database_lock(engine, "cvae-studies: optuna schema"):
                yield
        finally:
            engine.dispose()

    return held()


@contextmanager
def study_lock(storage: BaseStorage, study: str, *, fallback: Path) -> Iterator[None]:
    """Held around every change to a study's queue, by every process of the study on any machine: a database
    lock on PostgreSQL or MySQL; else a file lock, next to a SQLite database or at ``fallback`` (journal)."""
    engine = storage.engine if isinstance(storage, RDBStorage) else None
    if engine is not None and engine.dialect.name in LOCKING_DIALECTS:
        with _database_lock(engine, f"cvae-studies: study {study}"):
            yield
        return
    if engine is not None and engine.url.database not in (None, "", ":memory:"):
        fallback = Path(f"{Path(engine.url.database).resolve()}.lock")
    with FileLock(fallback):
        yield


def lock_path(*, storage: str, study: str, kind: str) -> Path:
    """A lock file outside the project, one per (storage, study) and kind (`run` or `claim`)."""
    digest = hashlib.sha256(f"{storage_label(storage)}\n{study}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "cvae-studies" / f"{digest}.{kind}.lock"


def make_sampler(spec: Spec, *, seed: int) -> optuna.samplers.BaseSampler:
    """TPE or random; for grid studies every trial is enqueued with all its params, so the sampler is idle."""
    if spec.settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner(name: str, *, epochs: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner `study.pruner` names, for trials of ``epochs`` epochs (one report per evaluated epoch)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def make_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    return pruner(spec.settings.pruner, epochs=spec.base.train.epochs)


def open_study(*, spec: Spec, storage: BaseStorage, label: str) -> optuna.Study:
    """Create the study, or load it and check it was made from the same spec (ConfigError if not)."""
    directions = ["maximize"] * (2 if spec.settings.objective == "pareto" else 1)
    sampler, pruner = make_sampler(spec, seed=spec.settings.sampler_seed), make_pruner(spec)
    try:  # an existing study is loaded, not created again: a journal gets no record before the digest is checked
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        study = optuna.create_study(study_name=spec.name, storage=storage, directions=directions,
                                    load_if_exists=True, sampler=sampler, pruner=pruner)
    digest = study.user_attrs.get(contract.SPEC_DIGEST)
    if digest is None:
        study.set_user_attr(contract.SPEC_DIGEST, spec.digest)
        study.set_user_attr(contract.OBJECTIVE, spec.settings.objective)
    elif digest != spec.digest or len(study.directions) != len(directions):
        raise ConfigError(f"{spec.path}: study {spec.name!r} in {label} was made from a different experiment, "
                          "search space or study settings; pass --study-name NEW to start another")
    if isinstance(storage, RDBStorage):  # every process must agree on when a trial is dead
        beat = study.user_attrs.get(contract.HEARTBEAT)
        if beat is None:
            study.set_user_attr(contract.HEARTBEAT, spec.settings.heartbeat)
        elif beat != spec.settings.heartbeat:
            raise ConfigError(f"{spec.path}: key study.heartbeat: study {spec.name!r} in {label} runs with a "
                              f"heartbeat of {beat} s, not {spec.settings.heartbeat}; "
                              f"pass --set study.heartbeat={beat}")
    return study


def load_study(*, spec: Spec, storage: BaseStorage, sampler_seed: int | None = None) -> optuna.Study:
    seed = spec.settings.sampler_seed if sampler_seed is None else sampler_seed
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec, seed=seed),
                             pruner=make_pruner(spec))


# ---------------------------------------------------------------------------------------------------------
# The queue


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's params, including the fixed params of a trial still waiting in the queue."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def is_done(trial: FrozenTrial) -> bool:
    """Finished for good: COMPLETE, PRUNED (not as a duplicate draw), diverged or unstable."""
    status = trial.user_attrs.get(contract.STATUS)
    return (trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED and status != "duplicate")
            or (trial.state == TrialState.FAIL and status in ("diverged", "unstable")))


def ranked_configurations(*, trials: list[FrozenTrial], objective: str,
                          rank_by: str = "mean") -> list[tuple[bool, list[FrozenTrial]]]:
    """The study's configurations as ``cvae.scoring.rank`` orders them: [(qualifies, its seeds' trials)], from the
    trials' status and checkpoint-choice figures (user attrs); crashed (`failed`) and unrun trials are left out."""
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in trials:
        status = trial.user_attrs.get(contract.STATUS)
        if trial.state.is_finished() and status in STATUSES and status != "failed":
            config = {k: v for k, v in trial_params(trial).items() if k != SEED_KEY}
            groups.setdefault(trial.user_attrs.get(contract.CONFIG_KEY, _item(config)), []).append(trial)

    def seed(trial: FrozenTrial) -> tuple[str, float | None]:
        attrs = trial.user_attrs
        bleu, gaussian = contract.best(VAL_BLEU), contract.best(VAL_GAUSSIAN)
        value = objective_score(attrs[bleu], attrs[gaussian], objective=objective) if bleu in attrs else None
        return attrs[contract.STATUS], value

    return [(ok, groups[key]) for key, ok, _ in rank({key: [seed(t) for t in members]
                                                         for key, members in groups.items()}, rank_by=rank_by)]


def prepare(*, study: optuna.Study, spec: Spec) -> list[FrozenTrial]:
    """Before the workers start (under ``study_lock``): fail the trials whose worker died (returned) and enqueue
    every (configuration, seed) not covered. Dead: RUNNING with a stopped heartbeat (RDB), or RUNNING at all
    (journal: one process runs the study at a time)."""
    if _requeue(study) is not None:
        stale = fail_stale(study)
    else:
        stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in stale:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    if spec.settings.sampler == "grid" or not spec.space:
        configs = spec.grid_configs()
    else:
        configs = _sampled_configs(study.get_trials(deepcopy=False), spec)
    enqueue_missing(study=study, spec=spec, configs=configs)
    return stale


def pending(*, study: optuna.Study, spec: Spec) -> int:
    """Trials still to train: those waiting plus the seeds of configurations not drawn yet."""
    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    if spec.settings.sampler == "grid" or not spec.space:
        return waiting
    return waiting + max(0, spec.n_configs - len(_sampled_configs(trials, spec))) * len(spec.settings.seeds)


def enqueue_missing(*, study: optuna.Study, spec: Spec, configs: list[dict[str, Any]]) -> int:
    """Enqueue (configuration, seed) for every seed of ``configs`` not waiting, running or done."""
    covered = _covered(study.get_trials(deepcopy=False))
    added = 0
    for config in configs:
        for seed in spec.settings.seeds:
            params = {**config, SEED_KEY: seed}
            if _item(params) not in covered:
                study.enqueue_trial(params)
                covered.add(_item(params))
                added += 1
    return added


def claim(*, spec: Spec, storage: BaseStorage, lock: Path,
          stop: Callable[[], bool] | None = None) -> optuna.Trial | None:
    """The next trial for this worker (RUNNING, all params suggested), or None when the study is done.

    With a heartbeat (RDB): dead trials are failed and enqueued again first; the claimed trial beats from a
    thread of this process until its next claim; and while nothing is left to claim but trials still run
    (elsewhere), this waits, polling once a heartbeat, to take over any whose worker dies: the study ends complete
    as long as one worker is left. ``stop()`` true ends the wait with None (Ctrl-C)."""
    _stop_heartbeat()
    heartbeat = getattr(storage, "heartbeat_interval", None)
    while True:
        with study_lock(storage, spec.name, fallback=lock):
            study = load_study(spec=spec, storage=storage)
            if heartbeat:
                fail_stale(study)
            trial = _next_trial(spec=spec, storage=storage, study=study)
            if trial is not None:
                if heartbeat:
                    _start_heartbeat(storage, trial._trial_id)  # noqa: SLF001 - Optuna's own heartbeat uses it
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
            if spec.settings.sampler == "grid" or len(_sampled_configs(trials, spec)) >= spec.n_configs:
                return None
            # a new configuration: first seed fixed, the rest drawn by a sampler seeded by the trial count
            study = load_study(spec=spec, storage=storage, sampler_seed=spec.settings.sampler_seed + len(trials))
            study.enqueue_trial({SEED_KEY: spec.settings.seeds[0]})
        with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat ourselves
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        params = suggest(trial, spec=spec)
        config = {k: v for k, v in params.items() if k != SEED_KEY}
        if fresh and config in _sampled_configs(trials, spec):
            trial.set_user_attr(contract.STATUS, "duplicate")
            study.tell(trial, state=TrialState.PRUNED)
            continue
        if fresh:
            enqueue_missing(study=study, spec=spec, configs=[config])
        return trial
    return None


# ---------------------------------------------------------------------------------------------------------
# Heartbeat: dead workers on any machine


class Requeue:
    """An RDB storage's stale-trial callback (Optuna calls it for each trial it fails for a stopped heartbeat):
    enqueue the trial's (configuration, seed) again with the same params, as ``RetryHeartbeatStaleTrialCallback``
    does (at most ``MAX_RETRY`` times for one trial), unless it is waiting, running or done already; then tell
    ``on_stale(failed=[its number])`` (a worker's: ``studies.tracking.reconcile``, which ends its MLflow run). Only called by ``fail_stale``, under ``study_lock``: never twice for a trial."""

    def __init__(self, on_stale: Callable[..., object] | None = None) -> None:
        self.on_stale = on_stale
        self.failed: list[FrozenTrial] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.failed.append(trial)
        if _item(trial_params(trial)) not in _covered(study.get_trials(deepcopy=False)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                self._retry(study, trial)
        if self.on_stale is not None:
            try:
                self.on_stale(failed=[trial.number])
            except Exception as exc:  # noqa: BLE001 - the next studies.run start or end marks it instead
                log.warning("trial %d: could not mark its MLflow run FAILED: %s", trial.number, exc)


def _requeue(study: optuna.Study) -> Requeue | None:
    """The study storage's ``Requeue`` when it has a heartbeat, else None."""
    storage = study._storage  # noqa: SLF001 - the storage optuna.storages.fail_stale_trials reads too
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is None:
        return None
    callback = storage.get_heartbeat_stale_trial_callback()
    return callback if isinstance(callback, Requeue) else None


def fail_stale(study: optuna.Study) -> list[FrozenTrial]:
    """Fail the RUNNING trials whose heartbeat stopped (their worker died, on any machine), each enqueued again
    by ``Requeue``; -> those trials. Nothing without a heartbeat. Call it under ``study_lock``."""
    requeue = _requeue(study)
    if requeue is None:
        return []
    requeue.failed.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return list(requeue.failed)


_beating: list[tuple[threading.Event, threading.Thread]] = []
"""This process's heartbeat thread (at most one: a worker trains one trial at a time)."""


def _start_heartbeat(storage: RDBStorage, trial_id: int) -> None:
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


def _stop_heartbeat() -> None:
    while _beating:
        stop, thread = _beating.pop()
        stop.set()
        thread.join(timeout=10)


atexit.register(_stop_heartbeat)


def suggest(trial: optuna.Trial, *, spec: Spec) -> dict[str, Any]:
    """Suggest every searched key and the seed (fixed params of an enqueued trial come back as they are)."""
    for dim in spec.space:
        if dim.kind == "choice":
            trial.suggest_categorical(dim.key, list(dim.choices))
        elif dim.kind == "int":
            trial.suggest_int(dim.key, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
        else:
            trial.suggest_float(dim.key, dim.low, dim.high, step=dim.step, log=dim.log)
    trial.suggest_categorical(SEED_KEY, list(spec.settings.seeds))
    return dict(trial.params)


def _covered(trials: list[FrozenTrial]) -> set[str]:
    """The (configuration, seed) items waiting, running or done."""
    return {_item(trial_params(t)) for t in trials
            if t.state in (TrialState.WAITING, TrialState.RUNNING) or is_done(t)}


def _sampled_configs(trials: list[FrozenTrial], spec: Spec) -> list[dict[str, Any]]:
    """Distinct configurations (params without seed) of trials that have every searched key, in trial order."""
    keys = [dim.key for dim in spec.space]
    configs: list[dict[str, Any]] = []
    for trial in trials:
        params = trial_params(trial)
        config = {k: params[k] for k in keys if k in params}
        if len(config) == len(keys) and trial.user_attrs.get(contract.STATUS) != "duplicate" and config not in configs:
            configs.append(config)
    return configs


def _item(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)
