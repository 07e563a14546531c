"""Opening the Optuna storage of a study: an RDB URL or a journal file, and where its lock files live."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from cvae.errors import ConfigError
from cvae.paths import expand
from studies.queue.heartbeat import GRACE, Requeue
from studies.queue.locks import FileLock, schema_lock
from studies.secrets import redact


def default_journal(study: str) -> Path:
    """The default storage: a journal file under the working directory's mlruns/ (safe across processes)."""
    return Path("mlruns") / "optuna" / f"{study}.journal"


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
            with schema_lock(target), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval is "experimental"
                if heartbeat is None:
                    return RDBStorage(target)
                return RDBStorage(target, heartbeat_interval=heartbeat, grace_period=GRACE * heartbeat,
                                  heartbeat_stale_trial_callback=Requeue(on_stale))
        path = expand(target).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path.with_name(path.name + ".lock"))  # acquire / release, as Optuna's journal locks
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - unreachable database, bad credentials: one line, not a traceback
        password = urlsplit(target).password if "://" in target else None
        reason = " ".join(str(exc).replace(password or "\0", "***").split())[:300]
        raise ConfigError(f"--storage {storage_label(target)}: cannot open: {type(exc).__name__}: {reason}") from None


def lock_path(*, storage: str, study: str, kind: str) -> Path:
    """A lock file outside the project, one per (storage, study) and kind (`run` or `claim`)."""
    digest = hashlib.sha256(f"{storage_label(storage)}\n{study}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "cvae-studies" / f"{digest}.{kind}.lock"


def repair_journal(path: Path) -> int:
    """Drop a torn last record of a journal file: one a crash or a full disk cut short while it was appended (its
    line has no newline yet). Optuna's reader skips such a line, but its next append would be glued onto it, and that
    line then breaks every later read of the study. Under the journal's own lock, so a record being written now
    is never taken for a torn one; -> the bytes dropped (0 for a sound journal)."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with FileLock(path.with_name(path.name + ".lock")), path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep, end = 0, size
        while end > 0:  # the last newline, read backwards a block at a time
            start = max(0, end - 65536)
            handle.seek(start)
            at = handle.read(end - start).rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
        return size - keep
