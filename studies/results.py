"""A study read back from MLflow (see docs/tracking-contract.md) as tidy pandas tables, and its seeds aggregated.

- ``load_study``: one row per trial (params cast back to the ExperimentConfig types, tags, final figures).
- ``aggregate``: one row per configuration (``cvae.config_key``): mean, std, median and n of every figure,
  divergence, collapse and prior-hole rates, and the seed run holding the configuration's best checkpoint.
- ``explosion_cells`` / ``collapse_cells``: the cells of the explosion and collapse maps (shared by the figures
  and the tables).
- ``load_curves``: one row per trial-epoch, only for the runs asked for.

Labels and number formats are in ``studies.labels``.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import ViewType
from pydantic import BaseModel

from cvae import names
from cvae.config import ConfigError, ExperimentConfig, flatten
from cvae.scoring import DEFAULT_OBJECTIVE, FINISHED, objective_score as score_of, qualifies, rank
from studies.labels import MAX_LEVELS, kl_labels, levels
from studies.spec import params_key
from studies.secrets import redact
from studies.tracking import ROLE_FILTER, check_tracking_uri, probe_tracking_store, sqlite_file
from studies import contract

LATENT_FIGURES = (contract.BEST_TEST_BLEU, contract.BEST_TEST_GAUSSIAN, contract.BEST_TEST_GAUSSIAN_UNIQUE,
                  contract.BEST_HELDOUT_BLEU, contract.BEST_LATENT_ACTIVE_UNITS, contract.BEST_LATENT_KL,
                  contract.BEST_LATENT_MUTUAL_INFO)
"""Figures of a checkpoint that an overflowing (`unstable`) latent makes meaningless: never averaged."""
FIGURES: tuple[str, ...] = (*LATENT_FIGURES, contract.BEST_EPOCH, contract.RUN_GRAD_NORM_MAX, contract.RUN_WALL_TIME,
                            contract.RUN_EPOCHS_DONE)
"""Final figures aggregated per configuration (same checkpoint for all `best/*`)."""
AGGREGATED = (*FINISHED, "diverged", "pruned")
"""Statuses counted in a configuration's figures and rates; `failed` (a crash) and `running` are not."""
NOT_SEARCHED = ("name", "train.seed")
"""Params never reported as a varied dimension (the seed is what aggregation averages over)."""
PHASES = ("search", "confirm")
"""A trial run belongs to the search, or to the confirmation of the top configurations on fresh seeds."""
OLD_NAMES = "best/select_bleu4"
"""A final metric only stores recorded before the namespaces (docs/tracking-contract.md) hold."""
INF_FLOOR = 1e300
"""MLflow stores +inf as the largest double; figures at or above this are read back as inf."""


class ReportError(ValueError):
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
    """An MlflowClient for reading; a ReportError, with nothing created or migrated, for a URI MLflow cannot read
    as a store: a sqlite file that does not exist (not a new empty store), is empty or is not MLflow's database,
    MLflow's file store, an unreachable server."""
    try:
        check_tracking_uri(tracking_uri)
    except ConfigError as exc:
        raise ReportError(str(exc)) from None
    path = sqlite_file(tracking_uri)
    if path is not None and not path.is_file():
        raise ReportError(f"--tracking-uri {redact(tracking_uri)}: no MLflow store at {path} (run a study first, or "
                          "pass --tracking-uri)")
    try:
        probe_tracking_store(tracking_uri, write=False)  # an unreachable server: one line now, not minutes of retries
    except ConfigError as exc:
        raise ReportError(str(exc)) from None
    return MlflowClient(tracking_uri)


def load_study(*, client: MlflowClient, study: str) -> StudyRuns:
    """The study's experiment, parent run and every trial run, as a StudyRuns."""
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        names = [e.name for e in client.search_experiments(view_type=ViewType.ALL)]
        close = difflib.get_close_matches(study, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (studies here: {', '.join(names) or 'none'})"
        raise ReportError(f"no study named {study!r} in {redact(client.tracking_uri)}{hint}")
    parents = [run for run in _search(client, experiment.experiment_id, ROLE_FILTER.format(role="study"))
               if run.data.tags.get("cvae.study", study) == study]
    parent = parents[0] if parents else None
    parent_tags = dict(parent.data.tags) if parent else {}
    runs = _search(client, experiment.experiment_id, ROLE_FILTER.format(role="trial"))
    if any(OLD_NAMES in run.data.metrics for run in runs):
        raise ReportError(f"study {study!r} in {redact(client.tracking_uri)} was recorded with the metric names used "
                          "before they were namespaced (best/select_bleu4, val/bleu4 for the test figure); rerun it "
                          "with --study-name NEW, or read it with a checkout older than the namespaces")
    return StudyRuns(study=study, experiment_id=experiment.experiment_id,
                     parent_run_id=parent.info.run_id if parent else None,
                     objective=parent_tags.get("cvae.objective", DEFAULT_OBJECTIVE) or DEFAULT_OBJECTIVE,
                     trials=trials_frame(runs), parent_tags=parent_tags,
                     rank_by=parent_tags.get("cvae.rank_by") or "mean")


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000,
                                  run_view_type=ViewType.ACTIVE_ONLY, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


# ---------------------------------------------------------------------------------------------------------
# One row per trial


def trials_frame(runs: list) -> pd.DataFrame:
    """MLflow runs -> one row per trial: identity and status columns, typed params, `best/*` and `run/*`.

    `run/grad_norm_max` of a diverged run that logged none (it diverged in its first epoch) is inf.
    """
    records = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        status = tags.get("cvae.status") or ("running" if run.info.status == "RUNNING" else "unknown")
        record: dict[str, Any] = {
            "run_id": run.info.run_id, "trial": _int(tags.get("optuna.trial_number")),
            "seed": _int(tags.get("cvae.seed", run.data.params.get("train.seed"))),
            "config_key": tags.get("cvae.config_key") or params_key(run.data.params), "status": status,
            "state": tags.get("optuna.state"), "diverged_step": _int(tags.get("cvae.diverged_step")),
            "divergence_cause": tags.get("cvae.divergence_cause"), "phase": tags.get("cvae.phase", "search"),
            "blocks": tags.get("cvae.blocks", ""),
            "run_name": run.info.run_name, "stopped_epoch": _int(tags.get("cvae.stopped_epoch")),
        }
        record.update(run.data.params)
        record.update({key: value for key, value in metrics.items()
                       if key.startswith((contract.BEST_PREFIX, contract.RUN_PREFIX))})
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=["run_id", "trial", "seed", "config_key", "status", "state",
                                                        "diverged_step", "divergence_cause", "phase",
                                                        "blocks", "stopped_epoch"] if not records else None)
    frame = cast_params(frame)
    for figure in FIGURES:
        if figure not in frame:
            frame[figure] = np.nan
    metric_columns = [c for c in frame.columns if c.startswith((contract.BEST_PREFIX, contract.RUN_PREFIX))]
    frame[metric_columns] = frame[metric_columns].astype(float).mask(frame[metric_columns] >= INF_FLOOR, np.inf)
    # an overflowing latent's figures are not numbers: shown by its status, never averaged into a table or colour
    frame.loc[frame["status"] == "unstable", [c for c in LATENT_FIGURES if c in frame]] = np.nan
    diverged_flag = (frame[contract.RUN_DIVERGED] if contract.RUN_DIVERGED in frame
                     else pd.Series(np.nan, index=frame.index))
    frame["diverged"] = (frame["status"] == "diverged") | (diverged_flag == 1)
    # a run that diverged before finishing an epoch logs no grad norm: its max was non-finite
    frame.loc[frame["diverged"] & frame[contract.RUN_GRAD_NORM_MAX].isna(), contract.RUN_GRAD_NORM_MAX] = np.inf
    frame["collapsed"] = frame["status"] == "collapsed"
    frame["prior_hole"] = frame["status"] == "prior_hole"
    frame["unstable"] = frame["status"] == "unstable"
    frame["finished"] = frame["status"].isin(FINISHED)
    frame["kl_label"] = kl_labels(frame)
    # maps and colours need few KL groups: the labels without numbers when a search made many
    many = len(frame["kl_label"].cat.categories) > MAX_LEVELS
    frame["kl_group"] = kl_labels(frame, coarse=True) if many else frame["kl_label"]
    return frame.sort_values(["trial", "run_id"], na_position="last", ignore_index=True)


def _int(value: Any) -> float | int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return np.nan


def param_types() -> dict[str, type]:
    """Dotted ExperimentConfig key -> scalar Python type of its field (`float | None` -> float)."""
    def walk(model: type[BaseModel], prefix: str) -> dict[str, type]:
        out: dict[str, type] = {}
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out.update(walk(annotation, f"{prefix}{name}."))
            else:
                out[f"{prefix}{name}"] = _scalar(annotation)
        return out
    return walk(ExperimentConfig, "")


def _scalar(annotation: Any) -> type:
    origin = get_origin(annotation)
    if origin is Literal:
        return type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return _scalar(next(a for a in get_args(annotation) if a is not type(None)))
    return annotation if isinstance(annotation, type) else str


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


def varied_params(trials: pd.DataFrame) -> list[str]:
    """Config keys that take more than one value across the trials (the study's dimensions), seed excluded."""
    keys = [k for k in param_types() if k not in NOT_SEARCHED and k in trials]
    return [k for k in keys if trials[k].astype(object).nunique(dropna=False) > 1]


# ---------------------------------------------------------------------------------------------------------
# Objective and aggregation over seeds


def objective_score(trials: pd.DataFrame, *, objective: str) -> pd.Series:
    """Per-trial value of the study's objective (NaN without a checkpoint), computed by ``cvae.scoring`` from the
    chosen checkpoint's checkpoint-choice figures `best/val/*`, as Optuna's trial values are: configurations
    are ranked on validation figures (distinct-row Gaussian), never on the reported test figures."""
    columns = [trials[c] if c in trials else pd.Series(np.nan, index=trials.index)
               for c in (contract.BEST_VAL_BLEU, contract.BEST_VAL_GAUSSIAN)]
    return pd.Series([score_of(b, g, objective=objective) for b, g in zip(*columns)], index=trials.index,
                     dtype=float)


def aggregate(trials: pd.DataFrame, *, objective: str, phase: str = "search", rank_by: str = "mean") -> pd.DataFrame:
    """One row per configuration of the runs of ``phase``, ranked: configurations that qualify
    (``cvae.scoring.qualifies``: most seeds healthy) first, each group by mean objective (best first).

    Columns: the config's params and `kl_label`; `<figure> mean|std|median|count` for every figure and
    `objective`; `n` (trials), `finished`, `divergence_rate` (diverged / n), `collapse_rate`, `prior_hole_rate`
    and `unstable_rate` (over finished trials); `qualifies`, `statuses` (e.g. `works 2, collapsed 1`);
    `best_run_id`, `best_run_objective`, `best_seed`.
    """
    data = trials[trials["status"].isin(AGGREGATED) & (trials["phase"] == phase)].copy()
    data["objective"] = objective_score(data, objective=objective)
    figures = [*FIGURES, "objective"]
    groups = data.groupby("config_key", sort=False)
    stats = groups[figures].agg(["mean", "std", "median", "count"])
    stats.columns = [f"{figure} {stat}" for figure, stat in stats.columns]
    rates = groups.agg(n=("run_id", "size"), finished=("finished", "sum"), diverged=("diverged", "sum"),
                       collapsed=("collapsed", "sum"), prior_hole=("prior_hole", "sum"),
                       unstable=("unstable", "sum"))
    rates["statuses"] = groups["status"].agg(lambda s: ", ".join(f"{k} {n}" for k, n in s.value_counts().items()))
    rates["divergence_rate"] = rates["diverged"] / rates["n"]
    finished = rates["finished"].where(rates["finished"] > 0)
    rates["collapse_rate"] = rates["collapsed"] / finished
    rates["prior_hole_rate"] = rates["prior_hole"] / finished
    rates["unstable_rate"] = rates["unstable"] / finished
    param_columns = [c for c in data.columns if c in param_types() and c != "train.seed"]
    params = groups.head(1).set_index("config_key")[[*param_columns, "kl_label", "kl_group"]]
    ranked = data.dropna(subset=["objective"]).sort_values("objective", ascending=False)
    best = ranked.drop_duplicates("config_key").set_index("config_key")[["run_id", "objective", "seed"]]
    best.columns = ["best_run_id", "best_run_objective", "best_seed"]
    configs = params.join([rates, stats, best])
    configs["qualifies"] = [qualifies(list(groups.get_group(key)["status"])) for key in configs.index]
    order = rank({key: list(zip(group["status"], group["objective"].where(group["objective"].notna(), None)))
                  for key, group in groups}, rank_by=rank_by)
    configs["rank score"] = pd.Series({key: value for key, _, value in order})
    return configs.loc[[key for key, _, _ in order]].reset_index()


def winner(*, configs: pd.DataFrame, confirmed: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The study's winner and where its figures come from: the best qualifying configuration of the confirmation
    on fresh seeds when there is one, else of the search (`search`), else (None, why there is none)."""
    for frame, source in ((confirmed, "confirm"), (configs, "search")):
        ranked = frame.dropna(subset=["objective mean"]) if not frame.empty else frame
        if not ranked.empty and ranked["qualifies"].any():
            return ranked[ranked["qualifies"]].iloc[0], source
        if source == "confirm" and not frame.empty:
            return None, ("no configuration qualified on the fresh seeds of the confirmation (most of each one's "
                          "seeds collapsed, diverged, sat in a prior hole or overflowed)")
    if configs.empty or configs["objective mean"].isna().all():
        return None, "no configuration produced a checkpoint"
    return None, ("no configuration qualifies: every one has most of its seeds collapsed, diverged, in a prior hole "
                  "or overflowing, so there is no setting to recommend from this study")


def pareto_mask(frame: pd.DataFrame, *, x: str, y: str) -> np.ndarray:
    """True for the rows whose (x, y) no other row beats on both (maximising); rows with NaN are never on it."""
    xs, ys = frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float)
    mask = np.zeros(len(xs), dtype=bool)
    best_y = -np.inf
    for i in sorted(np.flatnonzero(~(np.isnan(xs) | np.isnan(ys))), key=lambda i: (-xs[i], -ys[i])):
        if ys[i] > best_y:
            mask[i], best_y = True, ys[i]
    return mask


# ---------------------------------------------------------------------------------------------------------
# Map cells


EXPLOSION_KEYS = ("optim.name", "optim.lr", "optim.clip_norm")
COLLAPSE_KEYS = ("kl.schedule", "kl.beta_max", "kl.free_bits", "model.latent_size", "model.mu_bn")


TRACE_METRICS = ("trace/grad_norm", "trace/loss", "trace/logvar_absmax")


def explosion_pair(trials: pd.DataFrame) -> list[tuple[str, str]]:
    """(run id, legend label) of one seed of the most explosive configuration (most diverged, then largest grad
    norm) and one seed of its clipped twin (the same settings, gradients clipped); [] when nothing diverged."""
    data = block_rows(trials, EXPLOSION_KEYS)
    diverged = data[data["diverged"]]
    if diverged.empty:
        return []
    rates = data.groupby("config_key")["diverged"].mean()
    worst_key = max(diverged["config_key"].unique(),
                    key=lambda k: (rates[k],
                                   float(data.loc[data["config_key"] == k, contract.RUN_GRAD_NORM_MAX].max())))
    worst = diverged[diverged["config_key"] == worst_key].sort_values("seed").iloc[0]
    step = "" if pd.isna(worst["diverged_step"]) else f", diverged at step {int(worst['diverged_step'])}"
    pair = [(worst["run_id"], f"{worst['run_name']}{step}")]
    if pd.isna(worst["optim.clip_norm"]):
        others = [k for k in param_types() if k not in NOT_SEARCHED and k != "optim.clip_norm" and k in data]
        same = np.ones(len(data), dtype=bool)
        for key in others:
            same &= (data[key].astype(object).fillna("none") == worst[key] if not pd.isna(worst[key])
                     else data[key].isna()).to_numpy()
        twins = data[same & data["optim.clip_norm"].notna().to_numpy()].sort_values(["optim.clip_norm", "seed"])
        if not twins.empty:
            twin = twins.iloc[0]
            pair.append((twin["run_id"], f"{twin['run_name']} (clipped twin, {twin['status']})"))
    return pair


def load_trace(*, client: MlflowClient, pair: list[tuple[str, str]]) -> pd.DataFrame:
    """Per-step trace metrics of the runs in ``pair``: one row per (role, step)."""
    records = []
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


def block_rows(trials: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """The search trials a map is drawn from: with a blocked design, those of the blocks that vary any of
    ``keys`` (a configuration shared by blocks belongs to each); without blocks, every search trial."""
    search = trials[trials["phase"] == "search"] if "phase" in trials else trials
    if "blocks" not in search or not search["blocks"].astype(bool).any():
        return search
    members = search["blocks"].astype(str).str.split("+")
    names = sorted({name for names in members for name in names if name})
    chosen = [name for name in names
              if any(k in search and search.loc[members.map(lambda m, n=name: n in m), k].astype(object)
                     .nunique(dropna=False) > 1 for k in keys)]
    return search[members.map(lambda m: any(name in m for name in chosen))]


def explosion_cells(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (optimizer, lr level, clip level; see ``levels``): trials, diverged fraction, median/max of
    `run/grad_norm_max`, median divergence step, most common cause."""
    trials = block_rows(trials, EXPLOSION_KEYS)
    data = trials[trials["status"].isin(AGGREGATED)].copy()
    keys = ["optim.name", "lr", "clip"]
    if data.empty:
        return pd.DataFrame(columns=[*keys, "n", "diverged", "divergence_rate", "grad_median", "grad_max",
                                     "diverged_step_median", "cause"])
    data["optim.name"] = data["optim.name"].astype(str)
    data["lr"], data["clip"] = levels(data["optim.lr"]), levels(data["optim.clip_norm"])
    cells = data.groupby(keys, observed=True, sort=True).agg(
        n=("run_id", "size"), diverged=("diverged", "sum"), grad_median=(contract.RUN_GRAD_NORM_MAX, "median"),
        grad_max=(contract.RUN_GRAD_NORM_MAX, "max"), diverged_step_median=("diverged_step", "median"),
        cause=("divergence_cause", _common_cause)).reset_index()
    cells["divergence_rate"] = cells["diverged"] / cells["n"]
    return cells


def _common_cause(causes: pd.Series) -> str | None:
    """Most common divergence cause, without its epoch (`non-finite gradient in encoder`)."""
    short = causes.dropna().astype(str).str.replace(r"\s+at epoch \d+$", "", regex=True)
    return None if short.empty else str(short.value_counts().index[0])


def collapse_cells(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (KL bundle, latent-size level), over finished trials: AU, KL (nats), MI, scores, collapse/hole counts."""
    trials = block_rows(trials, COLLAPSE_KEYS)
    data = trials[trials["finished"]].copy()
    keys = ["kl_group", "latent"]
    columns = [*keys, "n", "collapsed", "prior_hole", "au_mean", "au_std", "kl_mean", "kl_std", "mi_mean",
               "gaussian_mean", "bleu4_mean"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    data["latent"] = levels(data["model.latent_size"])
    cells = data.groupby(keys, observed=True, sort=True).agg(
        n=("run_id", "size"), collapsed=("collapsed", "sum"), prior_hole=("prior_hole", "sum"),
        au_mean=(contract.BEST_LATENT_ACTIVE_UNITS, "mean"), au_std=(contract.BEST_LATENT_ACTIVE_UNITS, "std"),
        kl_mean=(contract.BEST_LATENT_KL, "mean"), kl_std=(contract.BEST_LATENT_KL, "std"),
        mi_mean=(contract.BEST_LATENT_MUTUAL_INFO, "mean"),
        gaussian_mean=(contract.BEST_TEST_GAUSSIAN, "mean"), bleu4_mean=(contract.BEST_TEST_BLEU, "mean")).reset_index()
    return cells[columns]


# ---------------------------------------------------------------------------------------------------------
# Curves


CURVE_KEYS = (names.LATENT_KL, names.TRAIN_GRAD_NORM_MAX, names.TEST_BLEU)
"""Epoch figures the report's training curves show (``studies.figures.CURVE_PANELS``)."""


def load_curves(*, client: MlflowClient, runs: pd.DataFrame, keys: tuple[str, ...] = CURVE_KEYS) -> pd.DataFrame:
    """One row per (run, epoch) of ``runs`` (needs `run_id`; other columns are carried along), one column per key."""
    records = []
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
