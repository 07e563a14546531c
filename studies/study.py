"""The Optuna side: storage, study create/resume, and the queue of (configuration, seed) trials.

One Optuna trial = one (configuration, seed); its params are the searched keys plus ``train.seed``.
- grid: before the workers start, the parent enqueues every (configuration, seed) of the grid in grid order.
  (Optuna's GridSampler is not used: it picks grid points at random and re-runs points under concurrency.)
- tpe / random: a worker that finds the queue empty lets the sampler draw a new configuration for the first
  seed and enqueues the same params with every other seed; a configuration drawn twice is pruned unrun.
Workers claim trials under a file lock, so no two workers draw a configuration at once.

Resume (``prepare``, in the parent before workers start): trials left RUNNING by a dead process are failed and
their (configuration, seed) enqueued again. A (configuration, seed) is done when COMPLETE, PRUNED or diverged
(FAIL with user attr status=diverged); one that failed for any other reason is tried again on the next run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from cvae.config import ConfigError
from studies.spec import SEED_KEY, Spec
from studies.tracking import redact

RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
DIGEST_ATTR = "cvae.spec_digest"
MAX_DRAWS = 50
"""Draws a worker makes for a configuration not sampled before, before it stops drawing."""


def default_journal(study: str) -> Path:
    """The default storage: a journal file under the working directory's mlruns/ (safe across processes)."""
    return Path("mlruns") / "optuna" / f"{study}.journal"


def check_storage(target: str) -> None:
    """An RDB URL with a known scheme, or a journal file path; a one-line ConfigError otherwise."""
    if "://" in target:
        scheme = target.split("://", 1)[0]
        if scheme.split("+", 1)[0] not in RDB_SCHEMES:
            raise ConfigError(f"--storage: unsupported URL scheme {scheme!r}; use sqlite:///FILE.db, "
                              "postgresql+psycopg://USER@HOST/DB, or a journal file path")
        folder = Path(target.removeprefix(f"{scheme}:///")).parent
        if scheme == "sqlite" and not folder.is_dir():
            raise ConfigError(f"--storage {target}: folder {folder} does not exist")
    elif Path(target).is_dir():
        raise ConfigError(f"--storage {target}: is a folder; give a journal file path or an RDB URL")


def storage_label(target: str) -> str:
    """How a storage is shown and logged: the URL with its password redacted, or the journal's absolute path."""
    return redact(target) if "://" in target else str(Path(target).resolve())


def open_storage(target: str) -> BaseStorage:
    """RDB storage for a URL, else a journal file (created with its folder); a one-line ConfigError on failure."""
    try:
        if "://" in target:
            return RDBStorage(target)
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


def lock_path(*, storage: str, study: str, kind: str) -> Path:
    """A lock file outside the project, one per (storage, study) and kind (`run` or `claim`)."""
    digest = hashlib.sha256(f"{storage_label(storage)}\n{study}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "cvae-studies" / f"{digest}.{kind}.lock"


def make_sampler(spec: Spec, *, seed: int) -> optuna.samplers.BaseSampler:
    """TPE or random; for grid studies every trial is enqueued with all its params, so the sampler is idle."""
    if spec.settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    name = spec.settings.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.base.train.epochs)
    return optuna.pruners.NopPruner()


def open_study(*, spec: Spec, storage: BaseStorage, label: str) -> optuna.Study:
    """Create the study, or load it and check it was made from the same spec (ConfigError if not)."""
    directions = ["maximize"] * (2 if spec.settings.objective == "pareto" else 1)
    study = optuna.create_study(study_name=spec.name, storage=storage, directions=directions, load_if_exists=True,
                                sampler=make_sampler(spec, seed=spec.settings.sampler_seed), pruner=make_pruner(spec))
    digest = study.user_attrs.get(DIGEST_ATTR)
    if digest is None:
        study.set_user_attr(DIGEST_ATTR, spec.digest)
        study.set_user_attr("cvae.objective", spec.settings.objective)
    elif digest != spec.digest or len(study.directions) != len(directions):
        raise ConfigError(f"{spec.path}: study {spec.name!r} in {label} was made from a different experiment, "
                          "search space or study settings; pass --study-name NEW to start another")
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
    """Finished for good: COMPLETE, PRUNED (not as a duplicate draw) or diverged."""
    status = trial.user_attrs.get("status")
    return (trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED and status != "duplicate")
            or (trial.state == TrialState.FAIL and status == "diverged"))


def prepare(*, study: optuna.Study, spec: Spec) -> list[FrozenTrial]:
    """Resume: fail the trials left RUNNING (returned) and enqueue every (configuration, seed) not covered."""
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
    covered = {_item(trial_params(t)) for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.WAITING, TrialState.RUNNING) or is_done(t)}
    added = 0
    for config in configs:
        for seed in spec.settings.seeds:
            params = {**config, SEED_KEY: seed}
            if _item(params) not in covered:
                study.enqueue_trial(params)
                covered.add(_item(params))
                added += 1
    return added


def claim(*, spec: Spec, storage: BaseStorage, lock: Path) -> optuna.Trial | None:
    """The next trial for this worker (RUNNING, all params suggested), or None when the study is done."""
    with FileLock(lock):
        study = load_study(spec=spec, storage=storage)
        for _ in range(MAX_DRAWS):
            trials = study.get_trials(deepcopy=False)
            fresh = not any(t.state == TrialState.WAITING for t in trials)
            if fresh:
                if spec.settings.sampler == "grid" or len(_sampled_configs(trials, spec)) >= spec.n_configs:
                    return None
                # a new configuration: first seed fixed, the rest drawn by a sampler seeded by the trial count
                study = load_study(spec=spec, storage=storage, sampler_seed=spec.settings.sampler_seed + len(trials))
                study.enqueue_trial({SEED_KEY: spec.settings.seeds[0]})
            trial = study.ask()
            params = suggest(trial, spec=spec)
            config = {k: v for k, v in params.items() if k != SEED_KEY}
            if fresh and config in _sampled_configs(trials, spec):
                trial.set_user_attr("status", "duplicate")
                study.tell(trial, state=TrialState.PRUNED)
                continue
            if fresh:
                enqueue_missing(study=study, spec=spec, configs=[config])
            return trial
        return None


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


def _sampled_configs(trials: list[FrozenTrial], spec: Spec) -> list[dict[str, Any]]:
    """Distinct configurations (params without seed) of trials that have every searched key, in trial order."""
    keys = [dim.key for dim in spec.space]
    configs: list[dict[str, Any]] = []
    for trial in trials:
        params = trial_params(trial)
        config = {k: params[k] for k in keys if k in params}
        if len(config) == len(keys) and trial.user_attrs.get("status") != "duplicate" and config not in configs:
            configs.append(config)
    return configs


def _item(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)
