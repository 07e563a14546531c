"""studies.preflight.stores: the checks made before a study starts, of the tracking store: what they accept and
refuse, and that they write nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from cvae.errors import ConfigError
from studies.preflight import check_mlflow_database, check_tracking_uri, sqlite_file, sqlite_tables


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


def test_sqlite_file_and_tables_of_a_store(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path / 'mlflow.db'}") == tmp_path / "mlflow.db"
    assert sqlite_file("http://127.0.0.1:5000") is None
    (tmp_path / "text.db").write_text("not a database")
    assert sqlite_tables(tmp_path / "text.db") is None


@pytest.mark.parametrize(("uri", "expected"), [
    ("mlruns", "--tracking-uri mlruns: expected sqlite:///FILE.db"),
    ("file:///tmp/mlruns", "MLflow's file store (file://) is deprecated"),
    ("sqlite:///:memory:", "expected sqlite:///FILE.db (a file, not in memory)"),
    ("sqlite:///no/such/folder/mlflow.db", "folder no/such/folder does not exist"),
])
def test_a_tracking_uri_that_names_no_store_is_refused_in_one_line(uri, expected):
    with pytest.raises(ConfigError) as info:
        check_tracking_uri(uri)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_sqlite_tracking_uri_in_an_existing_folder_passes_and_creates_nothing(tmp_path):
    check_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    check_tracking_uri("http://127.0.0.1:5000")
    assert list(tmp_path.iterdir()) == []
