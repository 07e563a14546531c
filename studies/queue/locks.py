"""Locks that serialise every change to a study's queue: a file lock on one machine, a database lock across
machines."""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy
import sqlalchemy.pool
from optuna.storages import BaseStorage, RDBStorage

from cvae.errors import ConfigError

LOCKING_DIALECTS = ("postgresql", "mysql", "mariadb")
"""Databases whose own locks serialise the queue across machines."""


class FileLock:
    """An exclusive ``flock`` on a file. The kernel releases it when its holder dies, so a killed worker never
    leaves a stale lock behind (Optuna's own journal locks wait out a grace period, and its symlink lock spins
    forever on a relative journal path). Also serves as the journal backend's lock (acquire / release)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def acquire(self, blocking: bool = True) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a")
        except OSError as exc:  # the lock's folder is a file, or cannot be written
            raise ConfigError(f"lock file {self.path}: cannot be made ({exc.strerror or type(exc).__name__}); "
                              f"remove what is at {self.path.parent} or make it a writable folder") from None
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
        params: dict[str, int | str] = {"key": key}
        lock, unlock = "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
    else:
        params = {"key": f"cvae-{key:x}"}
        lock, unlock = "SELECT GET_LOCK(:key, -1)", "SELECT RELEASE_LOCK(:key)"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sqlalchemy.text(lock), params)
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text(unlock), params)


def schema_lock(target: str, *, store: str = "optuna"):  # noqa: ANN202 - a context manager
    """Held while the ``store`` (`optuna`, `mlflow`) at RDB URL ``target`` creates or upgrades its tables, so
    processes that open a fresh database at once do not collide (two studies started side by side in a new project
    both build mlflow.db's tables, and SQLAlchemy fails the second half-way): a database lock on PostgreSQL or
    MySQL; on a SQLite file a file lock outside the project, one per database file; nothing for other URLs."""
    scheme = urlsplit(target).scheme.split("+", 1)[0]
    if scheme == "sqlite":
        database = sqlalchemy.engine.make_url(target).database
        if database in (None, "", ":memory:"):
            return nullcontext()
        digest = hashlib.sha256(f"{Path(database).resolve()}\n{store}".encode()).hexdigest()[:16]
        return FileLock(Path(tempfile.gettempdir()) / "cvae-studies" / f"{digest}.schema.lock")
    if scheme not in LOCKING_DIALECTS:
        return nullcontext()

    @contextmanager
    def held() -> Iterator[None]:
        engine = sqlalchemy.create_engine(target, poolclass=sqlalchemy.pool.NullPool)
        try:
            with _database_lock(engine, f"cvae-studies: {store} schema"):
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
