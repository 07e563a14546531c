"""studies.secrets: a URL's password redacted where it is shown, and scrubbed from everything else printed."""

from __future__ import annotations

import pytest

from studies import secrets
from studies.secrets import passwords, redact


@pytest.mark.parametrize("url, expected", [
    ("postgresql+psycopg://alice:s3cret@db:5432/optuna", "postgresql+psycopg://alice:***@db:5432/optuna"),
    ("postgresql://bob:p%40ss@host/db?sslmode=require", "postgresql://bob:***@host/db?sslmode=require"),
    ("postgresql://host/db?user=bob&password=hunter2", "postgresql://host/db?user=bob&password=***"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("mlruns/optuna/x.journal", "mlruns/optuna/x.journal"),
])
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_passwords_are_found_as_written_and_decoded():
    assert passwords("postgresql://bob:p%40ss@host/db?password=two") == {"p%40ss", "p@ss", "two"}
    assert passwords("sqlite:///mlflow.db") == set() and passwords(None) == set() and passwords("a/b") == set()


def test_scrub_replaces_each_registered_password(monkeypatch):
    monkeypatch.setattr(secrets, "_SECRETS", {"hunter2", "hunter22"})
    assert secrets.scrub("user hunter22 and hunter2, not hunter") == "user *** and ***, not hunter"
