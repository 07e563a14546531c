"""A study's trials aggregated: one row per configuration (mean, std, median and n of every figure over its seeds,
failure rates, the seed run holding its best checkpoint), the ranking and the winner, the Pareto front, and the
cells of the explosion and collapse maps (shared by the figures and the tables). Labels are ``studies.labels``'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cvae.scoring import FINISHED, Status, qualifies, rank
from cvae.scoring import objective_score as score_of
from studies import contract, labels
from studies.contract import Phase
from studies.labels import config_name, levels
from studies.report.read import FIGURES, NOT_SEARCHED, ReportError, load_study, open_client, param_types

AGGREGATED = (*FINISHED, Status.DIVERGED, Status.PRUNED)
"""Statuses counted in a configuration's figures and rates; `failed` (a crash) and `running` are not."""


def varied_params(trials: pd.DataFrame) -> list[str]:
    """Config keys that take more than one value across the trials (the study's dimensions), seed excluded."""
    keys = [k for k in param_types() if k not in NOT_SEARCHED and k in trials]
    return [k for k in keys if trials[k].astype(object).nunique(dropna=False) > 1]


def confirmation_changes(trials: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    """What the confirmation trained otherwise than the search (`study.confirm.set`, e.g. more epochs): config key
    -> (the search's value, the confirmation's), from the runs whose `cvae.searched_key` names a search run."""
    search = trials[trials["phase"] == Phase.SEARCH].drop_duplicates("config_key").set_index("config_key")
    confirm = trials[(trials["phase"] == Phase.CONFIRM) & (trials["searched_key"] != trials["config_key"])
                     & trials["searched_key"].isin(search.index)]
    keys = [k for k in param_types() if k not in NOT_SEARCHED and k in trials]
    changes: dict[str, tuple[Any, Any]] = {}
    for _, row in confirm.iterrows():
        before = search.loc[row["searched_key"]]
        changes.update({k: (before[k], row[k]) for k in keys if str(before[k]) != str(row[k])})
    return changes


def objective_score(trials: pd.DataFrame, *, objective: str) -> pd.Series:
    """Per-trial value of the study's objective (NaN without a checkpoint), computed by ``cvae.scoring`` from the
    chosen checkpoint's checkpoint-choice figures `best/val/*`, as Optuna's trial values are: configurations
    are ranked on validation figures (distinct-row Gaussian), never on the reported test figures."""
    columns = [trials[c] if c in trials else pd.Series(np.nan, index=trials.index)
               for c in (contract.BEST_VAL_BLEU, contract.BEST_VAL_GAUSSIAN)]
    return pd.Series([score_of(b, g, objective=objective) for b, g in zip(*columns)], index=trials.index,
                     dtype=float)


def aggregate(trials: pd.DataFrame, *, objective: str, phase: Phase = Phase.SEARCH,
              rank_by: str = "mean") -> pd.DataFrame:
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
    rates = groups.agg(n=("run_id", "size"), finished=("finished", "sum"), diverged=(Status.DIVERGED, "sum"),
                       collapsed=(Status.COLLAPSED, "sum"), prior_hole=(Status.PRIOR_HOLE, "sum"),
                       unstable=(Status.UNSTABLE, "sum"))
    rates["statuses"] = groups["status"].agg(lambda s: ", ".join(f"{k} {n}" for k, n in s.value_counts().items()))
    rates["divergence_rate"] = rates[Status.DIVERGED] / rates["n"]
    finished = rates["finished"].where(rates["finished"] > 0)
    rates["collapse_rate"] = rates[Status.COLLAPSED] / finished
    rates["prior_hole_rate"] = rates[Status.PRIOR_HOLE] / finished
    rates["unstable_rate"] = rates[Status.UNSTABLE] / finished
    param_columns = [c for c in data.columns if c in param_types() and c != "train.seed"]
    params = groups.head(1).set_index("config_key")[[*param_columns, "kl_label", "kl_group", "searched_key"]]
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
    for frame, source in ((confirmed, Phase.CONFIRM), (configs, Phase.SEARCH)):
        ranked = frame.dropna(subset=["objective mean"]) if not frame.empty else frame
        if not ranked.empty and ranked["qualifies"].any():
            return ranked[ranked["qualifies"]].iloc[0], source
        if source == Phase.CONFIRM and not frame.empty:
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


EXPLOSION_KEYS = ("optim.name", "optim.lr", "optim.clip_norm")


COLLAPSE_KEYS = ("kl.schedule", "kl.beta_max", "kl.free_bits", "model.latent_size", "model.mu_bn")


def explosion_pair(trials: pd.DataFrame) -> list[tuple[str, str]]:
    """(run id, legend label) of one seed of the most explosive configuration (most diverged, then largest grad
    norm) and one seed of its clipped twin (the same settings, gradients clipped); [] when nothing diverged."""
    data = block_rows(trials, EXPLOSION_KEYS)
    diverged = data[data[Status.DIVERGED]]
    if diverged.empty:
        return []
    rates = data.groupby("config_key")[Status.DIVERGED].mean()
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


def block_rows(trials: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """The search trials a map is drawn from: with a blocked design, those of the blocks that vary any of
    ``keys`` (a configuration shared by blocks belongs to each); without blocks, every search trial."""
    search = trials[trials["phase"] == Phase.SEARCH] if "phase" in trials else trials
    if "blocks" not in search or not search["blocks"].map(bool).any():
        return search
    members = search["blocks"]
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
        return pd.DataFrame(columns=[*keys, "n", Status.DIVERGED, "divergence_rate", "grad_median", "grad_max",
                                     "diverged_step_median", "cause"])
    data["optim.name"] = data["optim.name"].astype(str)
    data["lr"], data["clip"] = levels(data["optim.lr"]), levels(data["optim.clip_norm"])
    cells = data.groupby(keys, observed=True, sort=True).agg(
        n=("run_id", "size"), diverged=(Status.DIVERGED, "sum"), grad_median=(contract.RUN_GRAD_NORM_MAX, "median"),
        grad_max=(contract.RUN_GRAD_NORM_MAX, "max"), diverged_step_median=("diverged_step", "median"),
        cause=("divergence_cause", _common_cause)).reset_index()
    cells["divergence_rate"] = cells[Status.DIVERGED] / cells["n"]
    return cells


def _common_cause(causes: pd.Series) -> str | None:
    """Most common divergence cause, without its epoch (`non-finite gradient in encoder`)."""
    short = causes.dropna().astype(str).str.replace(r"\s+at epoch \d+$", "", regex=True)
    return None if short.empty else str(short.value_counts().index[0])


def collapse_cells(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (KL bundle, latent-size level), over finished trials: AU, KL (nats), MI, scores, collapse/hole counts."""
    data = block_rows(trials, COLLAPSE_KEYS)
    data = data.assign(latent=levels(data["model.latent_size"]) if not data.empty else [])
    return _latent_cells(data, column="latent")


DECODER_STRENGTH = {"model.word_dropout": ("wd", 0.0), "teacher_forcing.start": ("tf", 1.0)}
"""The decoder's inputs in training the map also says when they vary (Bowman et al. 2016): its label and the
value that leaves the decoder's inputs whole (then unsaid)."""

DECODER_KEYS = (*labels.DECODER_KEYS, *DECODER_STRENGTH)
"""The settings of the decoder's side of the collapse map."""


def decoder_cells(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (KL bundle, decoder), over finished trials of the blocks that vary the decoder (every search trial
    without blocks): the collapse map's cells, and heldout BLEU-4 (unseen verbs); none when no decoder setting
    varies. Word dropout and teacher forcing join the decoder's label where they vary (`lab · wd 0.5`)."""
    data = block_rows(trials, DECODER_KEYS)
    if not any(data[key].astype(object).nunique(dropna=False) > 1 for key in ("decoder", *DECODER_STRENGTH)
               if key in data):  # the label, not its keys: `lab` ignores the z-only share
        data = data.iloc[:0]
    varied = [key for key in DECODER_STRENGTH if not data.empty and key in data and data[key].nunique() > 1]
    if varied:
        names = [" · ".join([str(row[0]), *(f"{DECODER_STRENGTH[key][0]} {labels.fmt_value(value)}"
                                            for key, value in zip(varied, row[1:])
                                            if value != DECODER_STRENGTH[key][1])])
                 for row in zip(data["decoder"], *(data[key] for key in varied))]
        order = sorted(zip(data["decoder"].cat.codes, names))  # as the decoders grow stronger, then by name
        data = data.assign(decoder=pd.Categorical(names, categories=list(dict.fromkeys(n for _, n in order))))
    return _latent_cells(data, column="decoder")


def _latent_cells(trials: pd.DataFrame, *, column: str) -> pd.DataFrame:
    """Per (KL bundle, ``column``) over the finished ``trials``: AU, KL (nats), MI, scores, collapse/hole counts."""
    data = trials[trials["finished"]].copy() if not trials.empty else trials
    keys = ["kl_group", column]
    columns = [*keys, "n", Status.COLLAPSED, Status.PRIOR_HOLE, "au_mean", "au_std", "kl_mean", "kl_std", "mi_mean",
               "gaussian_mean", "bleu4_mean", "heldout_mean"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    if contract.BEST_HELDOUT_BLEU not in data:
        data[contract.BEST_HELDOUT_BLEU] = np.nan
    cells = data.groupby(keys, observed=True, sort=True).agg(
        n=("run_id", "size"), collapsed=(Status.COLLAPSED, "sum"), prior_hole=(Status.PRIOR_HOLE, "sum"),
        au_mean=(contract.BEST_LATENT_ACTIVE_UNITS, "mean"), au_std=(contract.BEST_LATENT_ACTIVE_UNITS, "std"),
        kl_mean=(contract.BEST_LATENT_KL, "mean"), kl_std=(contract.BEST_LATENT_KL, "std"),
        mi_mean=(contract.BEST_LATENT_MUTUAL_INFO, "mean"),
        gaussian_mean=(contract.BEST_TEST_GAUSSIAN, "mean"), bleu4_mean=(contract.BEST_TEST_BLEU, "mean"),
        heldout_mean=(contract.BEST_HELDOUT_BLEU, "mean")).reset_index()
    return cells[columns]


@dataclass
class Best:
    """The best configuration of a study and the seed run that holds its best checkpoint."""

    study: str
    objective: str
    config_key: str
    label: str
    searched: dict[str, Any]
    params: dict[str, Any]
    figures: dict[str, tuple[float, float]]
    n: int
    with_checkpoint: int
    diverged: int
    run_id: str
    seed: Any
    run_objective: float
    source: str = Phase.SEARCH  # `confirm`: figures from the confirmation on fresh seeds
    statuses: str = ""
    rank_by: str = "mean"  # how seeds were summed up for ranking (``cvae.scoring.RANK_BY``)


def find_best(*, tracking_uri: str, study: str) -> Best:
    """The best configuration of ``study``; a ReportError when no trial has checkpoint figures yet."""
    runs = load_study(client=open_client(tracking_uri=tracking_uri), study=study)
    row, source = winner(configs=aggregate(runs.trials, objective=runs.objective, rank_by=runs.rank_by),
                         confirmed=aggregate(runs.trials, objective=runs.objective, phase=Phase.CONFIRM,
                                             rank_by=runs.rank_by))
    if row is None:
        raise ReportError(f"study {study!r}: no winner: {source}")
    varied = varied_params(runs.trials)
    params = {key: row[key] for key in param_types() if key in row.index}
    figures = {name: (row[f"{name} mean"], row[f"{name} std"])
               for name in ("objective", contract.BEST_TEST_BLEU, contract.BEST_TEST_GAUSSIAN_UNIQUE,
                            contract.BEST_TEST_GAUSSIAN, contract.BEST_HELDOUT_BLEU, contract.BEST_LATENT_ACTIVE_UNITS,
                            contract.BEST_LATENT_KL)}
    return Best(study=study, objective=runs.objective, config_key=row["config_key"],
                label=config_name(row, varied=varied), searched={key: params[key] for key in varied}, params=params,
                figures=figures, n=int(row["n"]), with_checkpoint=int(row["objective count"]),
                diverged=int(row[Status.DIVERGED]), run_id=row["best_run_id"], seed=row["best_seed"],
                run_objective=float(row["best_run_objective"]), source=source, statuses=str(row["statuses"]),
                rank_by=runs.rank_by)
