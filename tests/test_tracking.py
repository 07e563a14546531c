"""studies.tracking's store checks: what they accept, and that they write nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from studies.preflight import check_mlflow_database, sqlite_tables


def hot_journal_copy(tmp_path: Path) -> Path:
    """A copy of an MLflow-like SQLite store taken mid-transaction: the state a SIGKILL mid-write leaves behind
    (the database and its hot rollback journal)."""
    live = tmp_path / "live.db"
    db = sqlite3.connect(live, isolation_level=None)
    db.execute("CREATE TABLE experiments (id INTEGER, name TEXT)")
    db.execute("CREATE TABLE runs (id INTEGER)")
    db.execute("PRAGMA cache_size=1")  # spill to the file (and the journal) before the commit
    db.execute("BEGIN IMMEDIATE")
    for i in range(2000):
        db.execute("INSERT INTO experiments VALUES (?, ?)", (i, "x" * 200))
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(live, crashed / "mlflow.db")
    shutil.copy(tmp_path / "live.db-journal", crashed / "mlflow.db-journal")
    db.execute("ROLLBACK")
    db.close()
    return crashed / "mlflow.db"


def test_a_store_left_by_a_killed_process_is_read_without_writing(tmp_path):
    """Rerunning a study after its main process was SIGKILLed mid-write must resume, not refuse the store."""
    path = hot_journal_copy(tmp_path)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    assert sqlite_tables(path) == {"experiments", "runs"}
    check_mlflow_database(f"sqlite:///{path}", write=True)
    check_mlflow_database(f"sqlite:///{path}", write=False)
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before
