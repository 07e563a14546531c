"""Everything MLflow, as docs/tracking-contract.md describes it: one experiment and one parent run per study,
one child run per Optuna trial (``mlflow.parentRunId`` tag, so it works across processes), metrics sent in
batches, artifacts, and stale runs marked FAILED on resume.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from cvae.checkpoint import save_checkpoint
from cvae.config import ConfigError, ExperimentConfig, dump_config
from cvae.train import EpochRecord, TrainResult

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""Relative to the working directory: run from the project root, a bare `mlflow ui` there shows the study."""
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")
ROLE_FILTER = "tags.`cvae.role` = '{role}'"
BEST_KEYS = ("bleu4", "gaussian", "heldout_bleu4", "kl", "active_units", "mutual_info")


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (``user:secret@host`` and ``password=`` query values)."""
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.password:
        userinfo, host = parts.netloc.rsplit("@", 1)
        url = url.replace(parts.netloc, f"{userinfo.split(':', 1)[0]}:***@{host}", 1)
    if parts is not None and "password=" in parts.query.lower():
        query = "&".join(f"{p.split('=', 1)[0]}=***" if p.lower().startswith("password=") else p
                         for p in parts.query.split("&"))
        url = url.replace(parts.query, query, 1)
    return url


def check_tracking_uri(uri: str) -> None:
    """A tracking URI with a known scheme (and, for SQLite, an existing folder); ConfigError otherwise."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme.split("+", 1)[0] not in TRACKING_SCHEMES:
        raise ConfigError(f"--tracking-uri {redact(uri)}: expected sqlite:///FILE.db, postgresql://..., "
                          "http(s)://HOST:PORT or file:///FOLDER")
    if scheme == "sqlite":
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise ConfigError(f"--tracking-uri {redact(uri)}: folder {folder} does not exist")


@dataclass(frozen=True)
class StudyRun:
    """Where a study's runs go: picklable, handed to the worker processes."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    study: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)


def start_study(*, tracking_uri: str, study: str, objective: str, spec_path: Path, storage: str) -> StudyRun:
    """Get or create the experiment and the parent run (RUNNING again on resume); creates the DB schema."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        experiment_id = client.create_experiment(study, artifact_location=_artifact_location(tracking_uri, study))
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    tags = {"cvae.role": "study", "cvae.study": study, "cvae.objective": objective, "cvae.spec": str(spec_path),
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


def fail_stale_runs(study_run: StudyRun, *, run_ids: list[str]) -> int:
    """Mark FAILED the given runs (of trials failed as stale) and every child run still RUNNING."""
    client = study_run.client()
    running = client.search_runs([study_run.experiment_id], max_results=5000,
                                 filter_string=ROLE_FILTER.format(role="trial") + " and attributes.status = 'RUNNING'")
    stale = set(run_ids) | {run.info.run_id for run in running}
    for run_id in stale:
        client.log_batch(run_id, tags=[RunTag("optuna.state", "FAIL"), RunTag("cvae.status", "failed"),
                                       RunTag("cvae.error", "left RUNNING by a process that died")])
        client.set_terminated(run_id, status="FAILED")
    return len(stale)


def start_trial(client: MlflowClient, *, study_run: StudyRun, number: int, config: ExperimentConfig,
                key: str) -> str:
    """Create the child run of trial ``number`` with its tags and every config field as a param."""
    tags = {"mlflow.parentRunId": study_run.parent_run_id, "cvae.role": "trial", "cvae.study": study_run.study,
            "optuna.trial_number": str(number), "cvae.config_key": key, "cvae.seed": str(config.train.seed)}
    run_id = client.create_run(study_run.experiment_id, run_name=f"trial-{number}", tags=tags).info.run_id
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
    metrics = {"run/wall_time_s": wall_time_s}
    if error:
        tags["cvae.error"] = error[:5000]
    if result is not None:
        metrics.update({"run/diverged": float(result.status == "diverged"),
                        "run/epochs_done": float(result.epochs_done)})
        if result.grad_norm_max is not None:
            metrics["run/grad_norm_max"] = result.grad_norm_max
        if result.best_epoch is not None:
            tags["cvae.best_epoch"] = str(result.best_epoch)
            metrics["best/epoch"] = float(result.best_epoch)
            metrics.update({f"best/{k}": float(result.metrics[f"val/{k}"]) for k in BEST_KEYS
                            if f"val/{k}" in result.metrics})
        if result.status == "diverged":
            tags.update({"cvae.diverged_step": str(result.diverged_step),
                         "cvae.divergence_cause": str(result.divergence_cause)})
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    if config is not None:
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
