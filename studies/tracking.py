"""Everything MLflow, as docs/tracking-contract.md describes it: one experiment and one parent run per study,
one child run per Optuna trial (``mlflow.parentRunId`` tag, so it works across processes), metrics sent in
batches, artifacts, and stale runs marked FAILED on resume. It only writes: the checks made before anything is
written are ``studies.preflight``'s, the reading is ``studies.report.read``'s. Passwords are kept out of it all by
``studies.secrets``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from cvae.config import ExperimentConfig
from cvae.configfile import dump_config
from cvae.scoring import Status
from studies import contract
from studies.contract import Phase
from studies.secrets import redact, scrub

if TYPE_CHECKING:  # the readers (report, best, study) import this module: no torch for them
    from cvae.trainer import EpochRecord, TrainResult

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""Relative to the working directory: run from the project root, a bare `mlflow ui` there shows the study."""
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
"""With a tracking server, MLflow prints two "View run" lines per ended run: not over the study's display."""
@dataclass(frozen=True)
class StudyRun:
    """Where a study's runs go: picklable, handed to the worker processes."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    study: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)

UI_URL = "http://127.0.0.1:5000"
"""Where a bare `mlflow ui` serves a local store."""


def add_tracking_argument(parser: argparse.ArgumentParser) -> None:
    """The one `--tracking-uri` option of every command that reads or writes the MLflow store."""
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI,
                        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING_URI})")


def study_tags(*, study: str, objective: str, rank_by: str, spec_path: Path | str, storage: str) -> dict[str, str]:
    """The tags of a study's parent run."""
    return {contract.TAG_ROLE: contract.ROLE_STUDY, contract.TAG_STUDY: study, contract.TAG_OBJECTIVE: objective,
            contract.TAG_RANK_BY: rank_by, contract.TAG_SPEC: str(spec_path), contract.TAG_STORAGE: redact(storage)}


def trial_tags(*, parent_run_id: str | None, study: str, number: int, key: str, seed: int, phase: Phase,
               blocks: tuple[str, ...] = (), device: str | None = None,
               searched_key: str | None = None) -> dict[str, str]:
    """The tags a trial's child run is created with (its outcome's tags come with ``finish_trial``)."""
    tags = {contract.TAG_ROLE: contract.ROLE_TRIAL, contract.TAG_STUDY: study, contract.TAG_TRIAL_NUMBER: str(number),
            contract.TAG_CONFIG_KEY: key, contract.TAG_SEED: str(seed), contract.TAG_PHASE: phase}
    if searched_key and searched_key != key:
        tags[contract.TAG_SEARCHED_KEY] = searched_key
    if parent_run_id:
        tags[contract.TAG_PARENT] = parent_run_id
    if blocks:
        tags[contract.TAG_BLOCKS] = contract.blocks_tag(blocks)
    if device:
        tags[contract.TAG_DEVICE] = device
    return tags


def start_study(*, tracking_uri: str, study: str, objective: str, spec_path: Path, storage: str,
                rank_by: str = "mean") -> StudyRun:
    """Get or create the experiment and the parent run (RUNNING again on resume); creates the DB schema, under a
    lock, as other studies may be creating it at the same moment."""
    from studies.queue.locks import schema_lock  # the writer's: the readers that import this module load no optuna

    with schema_lock(tracking_uri, store="mlflow"):
        client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        experiment_id = client.create_experiment(study, artifact_location=_artifact_location(tracking_uri, study))
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    client.set_experiment_tag(experiment_id, *contract.EXPERIMENT_KIND)
    tags = study_tags(study=study, objective=objective, rank_by=rank_by, spec_path=spec_path, storage=storage)
    found = client.search_runs([experiment_id], filter_string=contract.ROLE_FILTER.format(role=contract.ROLE_STUDY),
                               max_results=1)
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
OUTCOME_LOST = ("its run ended, but its outcome never reached the Optuna study (the worker died before telling it, or "
                "a crash cut the study journal's last record short); the trial was failed and enqueued again")
"""``cvae.error`` of a finished run whose trial Optuna failed: it is trained again, so this run is not counted."""


def reconcile(study_run: StudyRun, *, failed: Collection[int], phase: str) -> int:
    """The one reconciliation of MLflow with Optuna: every child run of ``phase`` (`search` or `confirm`) still
    RUNNING, or FINISHED, whose trial Optuna has failed (its ``optuna.trial_number`` in ``failed``) is tagged as a
    failed trial and ended FAILED; -> how many. Optuna fails a trial for a dead worker (a journal study's resume
    fails what was left RUNNING; an RDB study's heartbeat fails what stopped beating, on any machine); a FINISHED
    run of such a trial is one whose outcome never reached Optuna, and it is trained again, so it is counted once.
    Safe while other machines run trials: a live worker ends its run before it tells Optuna, so a live run's trial
    is never FAIL (and each run is read again just before it is marked)."""
    if not failed:
        return 0
    client = study_run.client()
    runs = client.search_runs([study_run.experiment_id], max_results=5000,
                              filter_string=f"{contract.ROLE_FILTER.format(role=contract.ROLE_TRIAL)} and "
                                            f"tags.`{contract.TAG_PHASE}` = '{phase}'")
    numbers = set(failed)
    return sum(_fail_run(client, run.info.run_id) for run in runs
               if run.info.status in ("RUNNING", "FINISHED")
               and run.data.tags.get(contract.TAG_TRIAL_NUMBER, "").isdigit()
               and int(run.data.tags[contract.TAG_TRIAL_NUMBER]) in numbers)


def _fail_run(client: MlflowClient, run_id: str) -> bool:
    """Tag a child run as a failed trial and end it FAILED, unless it has failed meanwhile; -> done."""
    status = client.get_run(run_id).info.status
    if status not in ("RUNNING", "FINISHED"):
        return False
    error = WORKER_DIED if status == "RUNNING" else OUTCOME_LOST
    client.log_batch(run_id, tags=[RunTag(contract.TAG_STATE, "FAIL"), RunTag(contract.TAG_STATUS, Status.FAILED),
                                   RunTag(contract.TAG_ERROR, error)])
    client.set_terminated(run_id, status="FAILED")
    return True


def start_trial(client: MlflowClient, *, study_run: StudyRun, number: int, config: ExperimentConfig,
                key: str, name: str | None = None, phase: Phase = Phase.SEARCH, blocks: tuple[str, ...] = (),
                device: str | None = None, searched_key: str | None = None) -> str:
    """Create the child run of trial ``number`` (named ``name``, default `trial-N`) with its tags and every config
    field as a param; ``phase`` is `search` or `confirm` (retrained on fresh seeds); ``device`` where it trains;
    ``searched_key`` the config key as the search trained it, when a confirmation trains it otherwise."""
    tags = trial_tags(parent_run_id=study_run.parent_run_id, study=study_run.study, number=number, key=key,
                      seed=config.train.seed, phase=phase, blocks=blocks, device=device, searched_key=searched_key)
    run_id = client.create_run(study_run.experiment_id, run_name=name or f"trial-{number}", tags=tags).info.run_id
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in config.flat().items()])
    return run_id


def log_epoch(client: MlflowClient, *, run_id: str, record: EpochRecord) -> None:
    """Every figure of an evaluated epoch as step metrics (step = 1-based epoch), in one batch."""
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, record.epoch) for k, v in record.metrics.items()])


def finish_trial(client: MlflowClient, *, run_id: str, result: TrainResult | None, config: ExperimentConfig | None,
                 state: str, status: str, run_status: str, error: str | None, wall_time_s: float,
                 trace: str | None = None) -> None:
    """Final tags, `best/*` and `run/*` metrics, artifacts (a crash's full ``trace`` as ``TRACEBACK_ARTIFACT``);
    then end the run with ``run_status``."""
    tags = {contract.TAG_STATE: state, contract.TAG_STATUS: status}
    metrics = {contract.RUN_WALL_TIME: wall_time_s}
    if error:
        tags[contract.TAG_ERROR] = scrub(error)[:5000]
    if result is not None:
        metrics.update({contract.RUN_DIVERGED: float(result.status == Status.DIVERGED),
                        contract.RUN_EPOCHS_DONE: float(result.epochs_done)})
        if result.grad_norm_max is not None:
            metrics[contract.RUN_GRAD_NORM_MAX] = result.grad_norm_max
        if result.rule_heldout_bleu4 is not None:
            metrics[contract.RUN_RULE_HELDOUT_BLEU] = result.rule_heldout_bleu4
        if result.best_epoch is not None:
            tags[contract.TAG_BEST_EPOCH] = str(result.best_epoch)
            metrics[contract.BEST_EPOCH] = float(result.best_epoch)
            metrics.update({contract.best(key): float(result.metrics[key]) for key in contract.BEST_FIGURES
                            if key in result.metrics})
        if result.status == Status.DIVERGED:
            tags.update({contract.TAG_DIVERGED_STEP: str(result.diverged_step),
                         contract.TAG_DIVERGENCE_CAUSE: str(result.divergence_cause)})
            if result.nonfinite:
                tags[contract.TAG_NONFINITE] = result.nonfinite
        if result.stopped_epoch is not None:
            tags[contract.TAG_STOPPED_EPOCH] = str(result.stopped_epoch)
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
            if trace:
                (folder / contract.TRACEBACK_ARTIFACT).write_text(scrub(trace))
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
