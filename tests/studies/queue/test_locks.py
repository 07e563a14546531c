"""studies.queue.locks: the file lock one holder has is not taken by another until released; a study's queue is
locked next to its SQLite database, or at the fallback path for a journal."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import optuna

from studies.queue.locks import FileLock, schema_lock, study_lock
from studies.queue.storage import open_storage


def test_a_held_file_lock_is_not_acquired_non_blocking_by_another_holder(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "queue.lock"  # its folder is made
    first, second = FileLock(path), FileLock(path)
    assert first.acquire(blocking=False)
    assert second.acquire(blocking=False) is False
    first.release()
    assert second.acquire(blocking=False)
    second.release()
    first.release()  # releasing twice is harmless


def test_a_file_lock_is_a_context_manager(tmp_path: Path) -> None:
    with FileLock(tmp_path / "x.lock"):
        assert not FileLock(tmp_path / "x.lock").acquire(blocking=False)
    assert FileLock(tmp_path / "x.lock").acquire(blocking=False)


def test_a_journal_study_is_locked_at_the_fallback(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "s.journal"))
    with study_lock(storage, "smoke", fallback=tmp_path / "claim.lock"):
        assert not FileLock(tmp_path / "claim.lock").acquire(blocking=False)
    assert FileLock(tmp_path / "claim.lock").acquire(blocking=False)


def test_a_sqlite_study_is_locked_next_to_its_database(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    with study_lock(storage, "smoke", fallback=tmp_path / "unused.lock"):
        assert not FileLock(tmp_path / "optuna.db.lock").acquire(blocking=False)
    assert not (tmp_path / "unused.lock").exists()
    storage.engine.dispose()


def test_a_sqlite_schema_is_locked_per_database_file_and_store(tmp_path: Path) -> None:
    """Two processes building the same fresh SQLite file's tables at once collide: the lock is per file and store,
    held outside the project (nothing is made beside the database)."""
    url = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with schema_lock(url, store="mlflow"):
        same = schema_lock(f"sqlite:///{tmp_path}/./mlflow.db", store="mlflow")
        assert isinstance(same, FileLock) and not same.acquire(blocking=False)
        for other in (schema_lock(url, store="optuna"), schema_lock(f"sqlite:///{tmp_path / 'other.db'}")):
            assert isinstance(other, FileLock) and other.acquire(blocking=False)
            other.release()
    assert list(tmp_path.iterdir()) == []
    assert isinstance(schema_lock("sqlite:///:memory:"), nullcontext)
    assert isinstance(schema_lock("sqlite://"), nullcontext)
