"""A study read back from MLflow (see docs/tracking-contract.md) as tidy pandas tables: one row per trial (params
cast back to the ExperimentConfig types, tags, final figures), and per-epoch curves and per-step traces of the
runs asked for. Reads only; the store is checked first by ``studies.preflight.check_reader``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import ViewType

from cvae import names
from cvae.config import ExperimentConfig, flatten, is_section, scalar_type, schema_fields
from cvae.errors import UserError
from cvae.scoring import DEFAULT_OBJECTIVE, FINISHED, Status
from studies import contract
from studies.contract import Phase
from studies.labels import MAX_LEVELS, decoder_labels, kl_labels
from studies.secrets import redact
from studies.spec import params_key

LATENT_FIGURES = (contract.BEST_TEST_BLEU, contract.BEST_TEST_GAUSSIAN, contract.BEST_TEST_GAUSSIAN_UNIQUE,
                  contract.BEST_HELDOUT_BLEU, contract.BEST_LATENT_ACTIVE_UNITS, contract.BEST_LATENT_KL,
                  contract.BEST_LATENT_MUTUAL_INFO)
"""Figures of a checkpoint that an overflowing (`unstable`) latent makes meaningless: never averaged."""


FIGURES: tuple[str, ...] = (*LATENT_FIGURES, contract.BEST_EPOCH, contract.RUN_GRAD_NORM_MAX, contract.RUN_WALL_TIME,
                            contract.RUN_EPOCHS_DONE, contract.RUN_RULE_HELDOUT_BLEU)
"""Final figures aggregated per configuration (same checkpoint for all `best/*`)."""


NOT_SEARCHED = ("name", "train.seed")
"""Params never reported as a varied dimension (the seed is what aggregation averages over)."""


PHASES = (Phase.SEARCH, Phase.CONFIRM)
"""A trial run belongs to the search, or to the confirmation of the top configurations on fresh seeds."""


OLD_NAMES = "best/select_bleu4"
"""A final metric only stores recorded before the namespaces (docs/tracking-contract.md) hold."""


INF_FLOOR = 1e300
"""MLflow stores +inf as the largest double; figures at or above this are read back as inf."""


class ReportError(UserError):
    """A one-line, user-facing error: no such store, no such study."""


@dataclass
class StudyRuns:
    """A study's trials as one DataFrame, with where they came from."""

    study: str
    experiment_id: str
    parent_run_id: str | None
    objective: str
    trials: pd.DataFrame
    parent_tags: dict[str, str]
    rank_by: str = "mean"


def open_client(*, tracking_uri: str) -> MlflowClient:
    """An MlflowClient for reading a store that ``studies.preflight.check_reader`` accepted."""
    return MlflowClient(tracking_uri)


def load_study(*, client: MlflowClient, study: str) -> StudyRuns:
    """The study's experiment, parent run and every trial run, as a StudyRuns."""
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        names = [e.name for e in client.search_experiments(view_type=ViewType.ALL)]
        close = difflib.get_close_matches(study, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (studies here: {', '.join(names) or 'none'})"
        raise ReportError(f"no study named {study!r} in {redact(client.tracking_uri)}{hint}")
    study_filter = contract.ROLE_FILTER.format(role=contract.ROLE_STUDY)
    parents = [run for run in _search(client, experiment.experiment_id, study_filter)
               if run.data.tags.get(contract.TAG_STUDY, study) == study]
    parent = parents[0] if parents else None
    parent_tags = dict(parent.data.tags) if parent else {}
    runs = _search(client, experiment.experiment_id, contract.ROLE_FILTER.format(role=contract.ROLE_TRIAL))
    if parent is None and not runs:  # MLflow's own `Default`, or any experiment no study wrote
        raise ReportError(f"no study named {study!r} in {redact(client.tracking_uri)}: that MLflow experiment holds "
                          "no study's runs (no parent run, no trial runs)")
    if any(OLD_NAMES in run.data.metrics for run in runs):
        raise ReportError(f"study {study!r} in {redact(client.tracking_uri)} was recorded with the metric names used "
                          "before they were namespaced (best/select_bleu4, val/bleu4 for the test figure); rerun it "
                          "with --study-name NEW, or read it with a checkout older than the namespaces")
    return StudyRuns(study=study, experiment_id=experiment.experiment_id,
                     parent_run_id=parent.info.run_id if parent else None,
                     objective=parent_tags.get(contract.TAG_OBJECTIVE, DEFAULT_OBJECTIVE) or DEFAULT_OBJECTIVE,
                     trials=trials_frame(runs), parent_tags=parent_tags,
                     rank_by=parent_tags.get(contract.TAG_RANK_BY) or "mean")


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000,
                                  run_view_type=ViewType.ACTIVE_ONLY, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def trials_frame(runs: list) -> pd.DataFrame:
    """MLflow runs -> one row per trial: identity and status columns, typed params, `best/*` and `run/*`.

    `run/grad_norm_max` of a diverged run that logged none (it diverged in its first epoch) is inf.
    """
    records: list[dict[str, Any]] = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        status = tags.get(contract.TAG_STATUS) or ("running" if run.info.status == "RUNNING" else "unknown")
        key = tags.get(contract.TAG_CONFIG_KEY) or params_key(run.data.params)
        record: dict[str, Any] = {
            "run_id": run.info.run_id, "trial": _int(tags.get(contract.TAG_TRIAL_NUMBER)),
            "seed": _int(tags.get(contract.TAG_SEED, run.data.params.get("train.seed"))),
            "config_key": key, "status": status, "searched_key": tags.get(contract.TAG_SEARCHED_KEY, key),
            "state": tags.get(contract.TAG_STATE), "diverged_step": _int(tags.get(contract.TAG_DIVERGED_STEP)),
            "divergence_cause": tags.get(contract.TAG_DIVERGENCE_CAUSE),
            "phase": tags.get(contract.TAG_PHASE, Phase.SEARCH),
            "blocks": contract.blocks_of_tag(tags.get(contract.TAG_BLOCKS)),
            "run_name": run.info.run_name, "stopped_epoch": _int(tags.get(contract.TAG_STOPPED_EPOCH)),
        }
        record.update(run.data.params)
        record.update({key: value for key, value in metrics.items()
                       if key.startswith((contract.BEST_PREFIX, contract.RUN_PREFIX))})
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=["run_id", "trial", "seed", "config_key", "searched_key",
                                                        "status", "state",
                                                        "diverged_step", "divergence_cause", "phase",
                                                        "blocks", "stopped_epoch"] if not records else None)
    frame = cast_params(frame)
    for figure in FIGURES:
        if figure not in frame:
            frame[figure] = np.nan
    metric_columns = [c for c in frame.columns if c.startswith((contract.BEST_PREFIX, contract.RUN_PREFIX))]
    frame[metric_columns] = frame[metric_columns].astype(float).mask(frame[metric_columns] >= INF_FLOOR, np.inf)
    # an overflowing latent's figures are not numbers: shown by its status, never averaged into a table or colour
    frame.loc[frame["status"] == Status.UNSTABLE, [c for c in LATENT_FIGURES if c in frame]] = np.nan
    diverged_flag = (frame[contract.RUN_DIVERGED] if contract.RUN_DIVERGED in frame
                     else pd.Series(np.nan, index=frame.index))
    frame[Status.DIVERGED] = (frame["status"] == Status.DIVERGED) | (diverged_flag == 1)
    # a run that diverged before finishing an epoch logs no grad norm: its max was non-finite
    frame.loc[frame[Status.DIVERGED] & frame[contract.RUN_GRAD_NORM_MAX].isna(), contract.RUN_GRAD_NORM_MAX] = np.inf
    frame[Status.COLLAPSED] = frame["status"] == Status.COLLAPSED
    frame[Status.PRIOR_HOLE] = frame["status"] == Status.PRIOR_HOLE
    frame[Status.UNSTABLE] = frame["status"] == Status.UNSTABLE
    frame["finished"] = frame["status"].isin(FINISHED)
    frame["kl_label"] = kl_labels(frame)
    # maps and colours need few KL groups: the labels without numbers when a search made many
    many = len(frame["kl_label"].cat.categories) > MAX_LEVELS
    frame["kl_group"] = kl_labels(frame, coarse=True) if many else frame["kl_label"]
    frame["decoder"] = decoder_labels(frame)
    return frame.sort_values(["trial", "run_id"], na_position="last", ignore_index=True)


def _int(value: Any) -> float | int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return np.nan


def param_types() -> dict[str, type]:
    """Dotted ExperimentConfig key -> scalar Python type of its field (`float | None` -> float)."""
    return {key: scalar_type(annotation) for key, annotation in schema_fields().items() if not is_section(annotation)}


def cast_params(frame: pd.DataFrame) -> pd.DataFrame:
    """Params logged as strings -> their config types; `None` -> NaN/None; absent keys get their default."""
    defaults = flatten(ExperimentConfig().model_dump())
    out = {}
    for key, kind in param_types().items():
        if key not in frame:
            out[key] = pd.Series([defaults[key]] * len(frame), index=frame.index, dtype=object)
            raw = out[key].astype(str)
        else:
            raw = frame[key].astype(object)
        raw = raw.where(raw.notna() & (raw != "None"))
        if kind is bool:
            out[key] = raw.map({"True": True, "False": False}).astype("boolean")
        elif kind in (int, float):
            numbers = pd.to_numeric(raw, errors="coerce")
            if kind is int:
                numbers = numbers.astype("Int64" if numbers.isna().any() else "int64")
            out[key] = numbers.astype(float) if kind is float else numbers
        else:
            out[key] = raw.astype(object).where(raw.notna(), None)
    return frame.assign(**out)


TRACE_METRICS = ("trace/grad_norm", "trace/loss", "trace/logvar_absmax")


def load_trace(*, client: MlflowClient, pair: list[tuple[str, str]]) -> pd.DataFrame:
    """Per-step trace metrics of the runs in ``pair``: one row per (role, step)."""
    records: list[dict[str, Any]] = []
    for run_id, role in pair:
        for key in TRACE_METRICS:
            records.extend({"role": role, "step": m.step, "key": key, "value": m.value}
                           for m in client.get_metric_history(run_id, key))
    if not records:
        return pd.DataFrame(columns=["role", "step", *TRACE_METRICS])
    long = pd.DataFrame.from_records(records)
    long.loc[long["value"] >= INF_FLOOR, "value"] = np.inf
    # only the steps each run logged (a pivot table would pad every run to every step with NaN); NaN stays NaN
    wide = long.groupby(["role", "step", "key"], sort=False)["value"].last().unstack("key").reset_index()
    wide.columns.name = None
    for key in TRACE_METRICS:
        if key not in wide:
            wide[key] = np.nan
    return wide


CURVE_KEYS = (names.LATENT_KL, names.TRAIN_GRAD_NORM_MAX, names.TEST_BLEU)
"""Epoch figures the report's training curves show (``studies.figures.CURVE_PANELS``)."""


def load_curves(*, client: MlflowClient, runs: pd.DataFrame, keys: tuple[str, ...] = CURVE_KEYS) -> pd.DataFrame:
    """One row per (run, epoch) of ``runs`` (needs `run_id`; other columns are carried along), one column per key."""
    records: list[dict[str, Any]] = []
    for run_id in runs["run_id"]:
        for key in keys:
            records.extend({"run_id": run_id, "epoch": m.step, "key": key, "value": m.value}
                           for m in client.get_metric_history(run_id, key))
    if not records:
        return pd.DataFrame(columns=[*runs.columns, "epoch", *keys])
    long = pd.DataFrame.from_records(records)
    long.loc[long["value"] >= INF_FLOOR, "value"] = np.inf
    wide = long.pivot_table(index=["run_id", "epoch"], columns="key", values="value", aggfunc="last").reset_index()
    wide.columns.name = None
    for key in keys:
        if key not in wide:
            wide[key] = np.nan
    return runs.merge(wide, on="run_id", how="inner").sort_values(["run_id", "epoch"], ignore_index=True)
