"""Everything MLflow, as docs/tracking-contract.md describes it: one experiment and one parent run per study,
one child run per Optuna trial (``mlflow.parentRunId`` tag, so it works across processes), metrics sent in
batches, artifacts, and stale runs marked FAILED on resume; and the checks of a tracking URI and store made
before anything is written. Passwords are kept out of it all by ``studies.secrets``.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

import sqlalchemy
import sqlalchemy.exc
import sqlalchemy.pool
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from cvae.config import ConfigError, ExperimentConfig, dump_config
from studies.secrets import redact, scrub
from studies import contract

if TYPE_CHECKING:  # the readers (report, best, study) import this module: no torch for them
    from cvae.trainer import EpochRecord, TrainResult

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""Relative to the working directory: run from the project root, a bare `mlflow ui` there shows the study."""
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
"""MLflow stores a study may use; not `file://`, MLflow's deprecated file store (a SQLite file does its job)."""
SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""
MLFLOW_TABLES = ("experiments", "runs")
"""Tables every MLflow SQL store has: a database without them is not MLflow's."""
ROLE_FILTER = "tags.`cvae.role` = '{role}'"
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
"""With a tracking server, MLflow prints two "View run" lines per ended run: not over the study's display."""
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
"""Experiment tag that makes MLflow 3's UI open a study on its runs table (model training), not the GenAI overview."""


def _without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """(URL without ``user:password@``, HTTP basic-auth header for them): urllib cannot take credentials inline."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), {"Authorization": f"Basic {token}"}


def check_tracking_uri(uri: str) -> None:
    """A tracking URI with a known scheme (and, for SQLite, a file path in an existing folder); ConfigError
    otherwise. Touches nothing."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    shown = redact(uri) or "''"
    if scheme == "file":
        raise ConfigError(f"--tracking-uri {shown}: MLflow's file store (file://) is deprecated and not supported "
                          "here; use a SQLite file, e.g. --tracking-uri sqlite:///mlflow.db")
    if scheme.split("+", 1)[0] not in TRACKING_SCHEMES:
        raise ConfigError(f"--tracking-uri {shown}: expected sqlite:///FILE.db, postgresql://... or "
                          "http(s)://HOST:PORT")
    if scheme == "sqlite":
        path = sqlite_file(uri)
        if path is None:
            raise ConfigError(f"--tracking-uri {shown}: expected sqlite:///FILE.db (a file, not in memory)")
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


@dataclass(frozen=True)
class StudyRun:
    """Where a study's runs go: picklable, handed to the worker processes."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    study: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)


def start_study(*, tracking_uri: str, study: str, objective: str, spec_path: Path, storage: str,
                rank_by: str = "mean") -> StudyRun:
    """Get or create the experiment and the parent run (RUNNING again on resume); creates the DB schema."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        experiment_id = client.create_experiment(study, artifact_location=_artifact_location(tracking_uri, study))
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    tags = {"cvae.role": "study", "cvae.study": study, "cvae.objective": objective, "cvae.rank_by": rank_by,
            "cvae.spec": str(spec_path),
            "optuna.storage": redact(storage)}
    found = client.search_runs([experiment_id], filter_string=ROLE_FILTER.format(role="study"), max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    else:
        run_id = client.create_run(experiment_id, run_name=study, tags=tags).info.run_id
    client.log_artifact(run_id, str(spec_path))
    return StudyRun(tracking_uri=tracking_uri, experiment_id=experiment_id, parent_run_id=run_id, study=study)


def end_study(study_run: StudyRun, *, status: str) -> None:
    """Close the parent run: FINISHED, FAILED (a worker died) or KILLED (interrupted)."""
    study_run.client().set_terminated(study_run.parent_run_id, status=status)


WORKER_DIED = ("its worker died (the process was killed or its machine lost) before the trial ended; the trial was "
               "failed in Optuna and enqueued again")
"""``cvae.error`` of a run whose trial Optuna failed for a dead worker."""


def reconcile(study_run: StudyRun, *, failed: Collection[int], phase: str) -> int:
    """The one reconciliation of MLflow with Optuna: every child run of ``phase`` (`search` or `confirm`) still
    RUNNING whose trial Optuna has failed (its ``optuna.trial_number`` in ``failed``) is tagged as a failed trial
    and ended FAILED; -> how many. Optuna fails a trial for a dead worker (a journal study's resume fails what was
    left RUNNING; an RDB study's heartbeat fails what stopped beating, on any machine). Safe while other machines
    run trials: a live worker ends its run before it tells Optuna, so a live run's trial is never FAIL (and each
    run is read again just before it is marked)."""
    if not failed:
        return 0
    client = study_run.client()
    running = client.search_runs([study_run.experiment_id], max_results=5000,
                                 filter_string=f"{ROLE_FILTER.format(role='trial')} and attributes.status = 'RUNNING' "
                                               f"and tags.`cvae.phase` = '{phase}'")
    numbers = set(failed)
    return sum(_fail_run(client, run.info.run_id, error=WORKER_DIED) for run in running
               if run.data.tags.get("optuna.trial_number", "").isdigit()
               and int(run.data.tags["optuna.trial_number"]) in numbers)


def _fail_run(client: MlflowClient, run_id: str, *, error: str) -> bool:
    """Tag a child run as a failed trial and end it FAILED, unless it has ended meanwhile; -> done."""
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    client.log_batch(run_id, tags=[RunTag("optuna.state", "FAIL"), RunTag("cvae.status", "failed"),
                                   RunTag("cvae.error", error)])
    client.set_terminated(run_id, status="FAILED")
    return True


def start_trial(client: MlflowClient, *, study_run: StudyRun, number: int, config: ExperimentConfig,
                key: str, name: str | None = None, phase: str = "search", blocks: list[str] | None = None,
                device: str | None = None) -> str:
    """Create the child run of trial ``number`` (named ``name``, default `trial-N`) with its tags and every config
    field as a param; ``phase`` is `search` or `confirm` (retrained on fresh seeds); ``device`` where it trains."""
    tags = {"mlflow.parentRunId": study_run.parent_run_id, "cvae.role": "trial", "cvae.study": study_run.study,
            "optuna.trial_number": str(number), "cvae.config_key": key, "cvae.seed": str(config.train.seed),
            "cvae.phase": phase}
    if blocks:
        tags["cvae.blocks"] = "+".join(blocks)
    if device:
        tags["cvae.device"] = device
    run_id = client.create_run(study_run.experiment_id, run_name=name or f"trial-{number}", tags=tags).info.run_id
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in config.flat().items()])
    return run_id


def log_epoch(client: MlflowClient, *, run_id: str, record: EpochRecord) -> None:
    """Every figure of an evaluated epoch as step metrics (step = 1-based epoch), in one batch."""
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, record.epoch) for k, v in record.metrics.items()])


def finish_trial(client: MlflowClient, *, run_id: str, result: TrainResult | None, config: ExperimentConfig | None,
                 state: str, status: str, run_status: str, error: str | None, wall_time_s: float) -> None:
    """Final tags, `best/*` and `run/*` metrics, artifacts; then end the run with ``run_status``."""
    tags = {"optuna.state": state, "cvae.status": status}
    metrics = {contract.RUN_WALL_TIME: wall_time_s}
    if error:
        tags["cvae.error"] = scrub(error)[:5000]
    if result is not None:
        metrics.update({contract.RUN_DIVERGED: float(result.status == "diverged"),
                        contract.RUN_EPOCHS_DONE: float(result.epochs_done)})
        if result.grad_norm_max is not None:
            metrics[contract.RUN_GRAD_NORM_MAX] = result.grad_norm_max
        if result.best_epoch is not None:
            tags["cvae.best_epoch"] = str(result.best_epoch)
            metrics[contract.BEST_EPOCH] = float(result.best_epoch)
            metrics.update({contract.best(key): float(result.metrics[key]) for key in contract.BEST_FIGURES
                            if key in result.metrics})
        if result.status == "diverged":
            tags.update({"cvae.diverged_step": str(result.diverged_step),
                         "cvae.divergence_cause": str(result.divergence_cause)})
            if result.nonfinite:
                tags["cvae.nonfinite"] = result.nonfinite
        if result.stopped_epoch is not None:
            tags["cvae.stopped_epoch"] = str(result.stopped_epoch)
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    if result is not None:  # per-step trace: the first steps of every run, up to the non-finite step of a divergence
        batch += [Metric(contract.TRACE_PREFIX + key, value, now, int(point["step"])) for point in result.trace
                  for key, value in point.items() if key != "step"]
    for start in range(0, max(len(batch), 1), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=batch[start:start + 1000],
                         tags=[RunTag(k, v) for k, v in tags.items()] if start == 0 else [])
    if config is not None:
        from cvae.checkpoint import save_checkpoint  # torch: only a worker, which has it loaded, gets here

        with tempfile.TemporaryDirectory(prefix="cvae-trial-") as tmp:
            folder = Path(tmp)
            (folder / "config.yaml").write_text(dump_config(config))
            if result is not None and result.samples:
                (folder / "samples.json").write_text(json.dumps(result.samples, indent=1))
            if result is not None and result.state_dict is not None:
                save_checkpoint(folder / "checkpoint" / "model.pt", state_dict=result.state_dict, config=config,
                                metrics=result.metrics, epoch=result.best_epoch)
            client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id, status=run_status)


def _artifact_location(tracking_uri: str, study: str) -> str | None:
    """For a SQLite store, artifacts go to `mlruns/<study>/` next to the database; else MLflow's default."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.resolve().parent / "mlruns" / study).as_uri()
