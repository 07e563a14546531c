"""The checks of where a study writes, made before anything is written: the study storage (a journal file or a
database URL) and the MLflow tracking store, each reached (or read) without changing it."""

from __future__ import annotations

import base64
import functools
import json
import re
import sqlite3
import tempfile
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import sqlalchemy
import sqlalchemy.exc
import sqlalchemy.pool

from cvae.cli import check_output
from cvae.errors import ConfigError, short_repr
from cvae.paths import side_file_problem, user_path
from studies.secrets import redact

RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
"""Study storages that are databases (any other --storage is a journal file path)."""


OWN_STORAGE = ("leave --storage out (the default, mlruns/optuna/STUDY.journal), or pass a journal file or another "
               "database, e.g. --storage study.journal")
"""What to pass instead of a storage that cannot be the study's."""


def _with_side_files(path: Path, *, flag: str, target: str) -> None:
    """A store file's name leaves room for the files made beside it (``cvae.paths.side_file_problem``)."""
    if (problem := side_file_problem(path)) is not None:
        raise ConfigError(f"{flag} {short_repr(redact(target))}: {problem}")


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
        _check_url(target, flag="--storage")
        if scheme != "sqlite":
            return
        path = sqlite_file(target)
        if path is None:
            raise ConfigError(f"--storage {shown}: expected sqlite:///FILE.db (a file, not in memory)")
        _with_side_files(user_path(path, where="--storage"), flag="--storage", target=target)
        if not path.parent.is_dir():
            raise ConfigError(f"--storage {shown}: folder {path.parent} does not exist")
        if path.is_dir():
            raise ConfigError(f"--storage {shown}: {path} is a folder; {OWN_STORAGE}")
    else:
        path = user_path(target, where="--storage")  # `~` is the home folder, as in every path
        _with_side_files(path, flag="--storage", target=target)
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


JOURNAL_RECORD_START = b'{"op_code":'
"""How every record of an Optuna journal begins (one JSON object a line)."""


def _check_journal(path: Path, *, shown: str) -> None:
    """Every line of an existing journal is an Optuna journal record (a JSON object with an `op_code`), except a
    last one a crash cut short while it was appended (no newline yet, the start of a record), which
    ``studies.queue.storage.repair_journal`` drops when the study opens. Reads only."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):  # the last line, torn
                fragment = line[:len(JOURNAL_RECORD_START)]
                if JOURNAL_RECORD_START.startswith(fragment) or line.startswith(JOURNAL_RECORD_START):
                    return
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or "op_code" not in record:
                what = ("not an Optuna journal (its records are JSON lines)" if number == 1 else
                        "not an Optuna journal record: the journal is damaged in the middle (a record written over "
                        "one a crash cut short?); restore it from a copy, or start another study")
                raise ConfigError(f"--storage {shown}: line {number}: {what}; {OWN_STORAGE}")


TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https")
"""MLflow stores a study may use, each probed before anything is written; not `file://`, MLflow's deprecated file
store (a SQLite file does its job)."""


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


MLFLOW_TABLES = ("experiments", "runs")
"""Tables every MLflow SQL store has: a database without them is not MLflow's."""


def _without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """(URL without ``user:password@``, HTTP basic-auth header for them): urllib cannot take credentials inline."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), {"Authorization": f"Basic {token}"}


def _check_url(url: str, *, flag: str) -> None:
    """A URL Python can parse (brackets, port), and for a database server, its driver installed."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as exc:
        raise ConfigError(f"{flag} {shown}: not a valid URL ({exc})") from None
    if parts.scheme.split("+", 1)[0] in SERVER_DATABASES:
        try:
            sqlalchemy.engine.make_url(url).get_dialect().import_dbapi()
        except ImportError as exc:
            raise ConfigError(f"{flag} {shown}: the database driver for {parts.scheme!r} is not installed ({exc}); "
                              "install it, or use postgresql+psycopg:// (its driver comes with the project)") from None
        except (ValueError, sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as exc:
            raise ConfigError(f"{flag} {shown}: not a database URL SQLAlchemy knows ({exc})") from None


def check_tracking_uri(uri: str) -> None:
    """A tracking URI with a known scheme (and, for SQLite, a file path in an existing folder; for a database
    server, its driver installed); ConfigError otherwise. Touches nothing."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    shown = redact(uri) or "''"
    if scheme == "file":
        raise ConfigError(f"--tracking-uri {shown}: MLflow's file store (file://) is deprecated and not supported "
                          "here; use a SQLite file, e.g. --tracking-uri sqlite:///mlflow.db")
    if scheme.split("+", 1)[0] not in TRACKING_SCHEMES:
        raise ConfigError(f"--tracking-uri {shown}: expected sqlite:///FILE.db, postgresql://... or "
                          "http(s)://HOST:PORT")
    _check_url(uri, flag="--tracking-uri")
    if scheme == "sqlite":
        path = sqlite_file(uri)
        if path is None:
            raise ConfigError(f"--tracking-uri {shown}: expected sqlite:///FILE.db (a file, not in memory)")
        _with_side_files(user_path(path, where="--tracking-uri"), flag="--tracking-uri", target=uri)
        if path.is_dir():
            raise ConfigError(f"--tracking-uri {shown}: {path} is a folder; name the database file in it, e.g. "
                              f"sqlite:///{path / 'mlflow.db'}")
        if not path.parent.is_dir():
            raise ConfigError(f"--tracking-uri {shown}: folder {path.parent} does not exist")


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///FILE` URI; None for other URIs and in-memory databases."""
    if not uri.startswith("sqlite:///"):
        return None
    name = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def sqlite_tables(path: Path) -> set[str] | None:
    """The tables of an SQLite database file, read without writing anything (not even a journal); None when the
    file is not an SQLite database."""
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return None
    query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            return {row[0] for row in db.execute(query)}
    except sqlite3.OperationalError:
        # a hot journal left by a process killed mid-write: recovering it is a write, which mode=ro refuses (the
        # store's own next writer rolls it back); the schema is read from the file as it is, still writing nothing
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)) as db:
            return {row[0] for row in db.execute(query)}


def check_mlflow_database(uri: str, *, write: bool) -> None:
    """A SQLite tracking store that is not MLflow's is refused before MLflow opens it (MLflow would make or
    migrate its schema in it): a file that is not an SQLite database, or a database of other tables (an Optuna
    storage); for a reader (``write=False``) also an empty (0-byte) file or one without MLflow's tables. A one-line
    ConfigError; reads only."""
    path = sqlite_file(uri)
    if path is None or not path.is_file():
        return
    shown = redact(uri)
    if path.stat().st_size == 0:
        if write:
            return  # MLflow makes its schema in it, as in a new file
        raise ConfigError(f"--tracking-uri {shown}: {path} is empty (0 bytes), not an MLflow database; run a study "
                          "first, or pass the --tracking-uri of one")
    try:
        tables = sqlite_tables(path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"--tracking-uri {shown}: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if tables is None:
        raise ConfigError(f"--tracking-uri {shown}: {path} is not an SQLite database; pass the MLflow database, "
                          "e.g. --tracking-uri sqlite:///mlflow.db")
    if not set(MLFLOW_TABLES) <= tables and (tables or not write):
        what = f"holds other tables ({', '.join(sorted(tables)[:4])})" if tables else "holds no tables"
        raise ConfigError(f"--tracking-uri {shown}: {path} {what}, not MLflow's; pass the MLflow database, e.g. "
                          "--tracking-uri sqlite:///mlflow.db")
    if "alembic_version" in tables:
        revision = _schema_revision(path)
        if revision is not None and revision not in mlflow_revisions():
            raise ConfigError(f"--tracking-uri {shown}: {path} has MLflow schema revision {revision!r}, which this "
                              f"MLflow ({_mlflow_version()}) does not know: it was made by another MLflow version; "
                              "use that version, or a new --tracking-uri")


def _schema_revision(path: Path) -> str | None:
    """The alembic revision an MLflow SQLite store is at (read only)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


@functools.cache
def mlflow_revisions() -> frozenset[str]:
    """Every schema revision the installed MLflow's migrations know (read from its migration files)."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        return frozenset()
    folder = Path(spec.origin).parent / "store" / "db_migrations" / "versions"
    return frozenset(match.group(1) for file in folder.glob("*.py")
                     for match in [re.search(r'^revision = "([0-9a-f]+)"', file.read_text(), re.M)] if match)


def _mlflow_version() -> str:
    from importlib.metadata import version

    return f"mlflow {version('mlflow')}"


SERVER_DATABASES = ("postgresql", "mysql", "mssql")
"""Tracking-URI schemes of database servers (MLflow's SQLAlchemy stores other than SQLite)."""


def _connect(uri: str, scheme: str) -> None:
    """Open and close one connection to a database-server URI (10 s connect timeout where the driver has one)."""
    connect_args = {"connect_timeout": 10} if scheme in ("postgresql", "mysql") else {}
    engine = sqlalchemy.create_engine(uri, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def probe_storage(target: str) -> None:
    """Reach a study storage on a database server (PostgreSQL, MySQL) before anything is made: a server that does not
    answer is a one-line ConfigError now, not after the MLflow parent run exists. Changes nothing."""
    scheme = target.split("://", 1)[0].split("+", 1)[0] if "://" in target else ""
    if scheme not in SERVER_DATABASES:
        return
    try:
        _connect(target, scheme)
    except (OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        exc = getattr(exc, "orig", None) or exc
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"--storage {redact(target)}: cannot reach the database ({type(exc).__name__}: "
                          f"{reason})") from None


def probe_tracking_store(uri: str, *, write: bool = True) -> None:
    """Reach the store before a study makes anything: an HTTP server or a database server (PostgreSQL, MySQL,
    SQL Server) that does not answer, or a SQLite database (or its folder, when it is still to be made) that cannot
    be written, is a one-line ConfigError. Changes nothing. (MLflow itself retries an unreachable store for
    minutes, and only once the study has started.) ``write=False`` (readers: report, best, use) only checks that
    a server answers."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0]
    check_mlflow_database(uri, write=write)
    try:
        if scheme in SERVER_DATABASES:
            _connect(uri, scheme)
        if scheme in ("http", "https"):
            try:
                base, auth = _without_userinfo(uri.rstrip("/"))
                urllib.request.urlopen(urllib.request.Request(f"{base}/health", headers=auth), timeout=10).close()
            except urllib.error.HTTPError:
                pass  # it answers, so it is reachable (a proxy or auth may refuse /health itself)
        elif scheme == "sqlite" and write:
            path = Path(uri.removeprefix("sqlite:///"))
            if not path.exists():
                tempfile.TemporaryFile(dir=path.parent).close()
            else:
                with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("CREATE TABLE cvae_write_probe (x)")  # rolled back: only proves it can write
                    db.execute("ROLLBACK")
    except (OSError, sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
        exc = getattr(exc, "orig", None) or exc  # the driver's own error says what went wrong
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())[:200]
        what = ("cannot reach the MLflow server" if scheme.startswith("http") else
                "cannot reach the MLflow database" if scheme in SERVER_DATABASES else "cannot write the MLflow store")
        raise ConfigError(f"--tracking-uri {redact(uri)}: {what} ({type(exc).__name__}: {reason})") from None


def check_reader(tracking_uri: str) -> None:
    """A store the readers (report, best, use) can read, with nothing created or migrated: a one-line ConfigError
    for a URI MLflow cannot read as a store: a sqlite file that does not exist (not a new empty store), is empty or
    is not MLflow's database, MLflow's file store, an unreachable server."""
    check_tracking_uri(tracking_uri)
    path = sqlite_file(tracking_uri)
    if path is not None and not path.is_file():
        raise ConfigError(f"--tracking-uri {redact(tracking_uri)}: no MLflow store at {path} (run a study first, or "
                          "pass --tracking-uri)")
    probe_tracking_store(tracking_uri, write=False)  # an unreachable server: one line now, not minutes of retries
