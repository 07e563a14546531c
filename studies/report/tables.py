"""The report's tables as display DataFrames (strings, `mean ± std`), from the frames of ``studies.results``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cvae.scoring import Status
from studies import contract
from studies.labels import config_name, mean_std, pow10, rate
from studies.report.analysis import pareto_mask

LEADERBOARD_SIZE = 10
MAX_MAP_ROWS = 40


def leaderboard(configs: pd.DataFrame, *, varied: list[str], objective: str,
                size: int = LEADERBOARD_SIZE) -> pd.DataFrame:
    """Top ``size`` configurations as ``studies.results.aggregate`` ranks them (those whose seeds are mostly
    healthy first, then by mean objective): the configuration by its short name (as its runs are named), figures
    as mean ± std, the seeds' statuses. A configuration that does not qualify gets no rank (`–`), whatever its
    figures. Few columns, so that it reads in MLflow's narrow artifact viewer."""
    ranked = configs.dropna(subset=["objective mean"]).reset_index(drop=True)
    on_front = pareto_mask(ranked, x=f"{contract.BEST_TEST_GAUSSIAN_UNIQUE} mean", y=f"{contract.BEST_TEST_BLEU} mean")
    top = ranked.head(size)
    qualified = top["qualifies"].astype(bool).to_numpy() if "qualifies" in top else [True] * len(top)
    table = pd.DataFrame({"rank": [str(i + 1) if ok else "–" for i, ok in enumerate(qualified)]})
    table["configuration"] = [config_name(row, varied=varied) for _, row in top.iterrows()]
    columns = {"objective": "objective", "BLEU-4": contract.BEST_TEST_BLEU,
               "Gaussian (distinct)": contract.BEST_TEST_GAUSSIAN_UNIQUE, "Gaussian (lab)": contract.BEST_TEST_GAUSSIAN,
               "heldout BLEU-4": contract.BEST_HELDOUT_BLEU, "KL (nats)": contract.BEST_LATENT_KL}
    for title, figure in columns.items():
        digits = 1 if figure in (contract.BEST_LATENT_ACTIVE_UNITS, contract.BEST_LATENT_KL) else 3
        table[title] = [mean_std(m, s, digits=digits) for m, s in zip(top[f"{figure} mean"], top[f"{figure} std"])]
    table["seeds"] = top["statuses"].to_numpy() if "statuses" in top else ""
    table["Pareto front"] = ["yes" if flag else "" for flag in on_front[: len(top)]]
    return table


def explosion_table(cells: pd.DataFrame, *, max_rows: int = MAX_MAP_ROWS) -> pd.DataFrame:
    """Per optimizer x lr x clip norm, most diverged first: diverged seeds, grad norms, step and cause."""
    ordered = cells.sort_values(["divergence_rate", "grad_median"], ascending=False).head(max_rows)
    return pd.DataFrame({
        "optimizer": ordered["optim.name"].astype(str).to_numpy(),
        "lr": ordered["lr"].astype(str).to_numpy(),
        "clip norm": ordered["clip"].astype(str).to_numpy(),
        Status.DIVERGED: [rate(d, n) for d, n in zip(ordered[Status.DIVERGED], ordered["n"])],
        "median max grad norm": [pow10(v) for v in ordered["grad_median"]],
        "max grad norm": [pow10(v) for v in ordered["grad_max"]],
        "median divergence step": ["–" if pd.isna(v) else f"{v:.0f}" for v in ordered["diverged_step_median"]],
        "most common cause": [c if isinstance(c, str) else "–" for c in ordered["cause"]],
    })


def stopped_table(trials: pd.DataFrame, *, max_rows: int = MAX_MAP_ROWS) -> pd.DataFrame:
    """Trials that stopped before their last epoch (diverged, collapse detector, pruned), and how far each got."""
    if trials.empty:
        return pd.DataFrame(columns=["run", "status", "epochs done", "why"])
    total = trials["train.epochs"] if "train.epochs" in trials else pd.Series(np.nan, index=trials.index)
    early = trials[trials["status"].isin((Status.DIVERGED, Status.COLLAPSED, Status.UNSTABLE, Status.PRUNED))
                   & (trials[contract.RUN_EPOCHS_DONE].fillna(0) < total)].sort_values(["status", "run_name"])
    early = early.head(max_rows)
    return pd.DataFrame({
        "run": early["run_name"].astype(str).to_numpy(),
        "status": early["status"].astype(str).to_numpy(),
        "epochs done": [f"{0 if pd.isna(d) else int(d)}/{int(t)}" for d, t in
                        zip(early[contract.RUN_EPOCHS_DONE], total.loc[early.index])],
        "why": [f"diverged at step {int(s)}: {c}" if st == Status.DIVERGED and not pd.isna(s) else
                f"stopped at epoch {int(e)}: latent {st} for train.collapse_patience epochs" if not pd.isna(e) else
                st for st, s, c, e in zip(early["status"], early["diverged_step"], early["divergence_cause"],
                                          early["stopped_epoch"])],
    })


def collapse_table(cells: pd.DataFrame, *, max_rows: int = MAX_MAP_ROWS) -> pd.DataFrame:
    """Per KL bundle x latent size over finished trials, most collapsed first: rates, AU, KL, MI, scores."""
    ordered = cells.assign(_order=cells[Status.COLLAPSED] / cells["n"]).sort_values(
        ["_order", "kl_mean"], ascending=[False, True]).head(max_rows)
    return pd.DataFrame({
        "KL schedule": ordered["kl_group"].astype(str).to_numpy(),
        "latent size": ordered["latent"].astype(str).to_numpy(),
        Status.COLLAPSED: [rate(c, n) for c, n in zip(ordered[Status.COLLAPSED], ordered["n"])],
        "prior hole": [rate(h, n) for h, n in zip(ordered[Status.PRIOR_HOLE], ordered["n"])],
        "active units": [mean_std(m, s, digits=1) for m, s in zip(ordered["au_mean"], ordered["au_std"])],
        "KL (nats)": [mean_std(m, s, digits=2) for m, s in zip(ordered["kl_mean"], ordered["kl_std"])],
        "MI (nats)": [mean_std(m, math.nan, digits=2) for m in ordered["mi_mean"]],
        "Gaussian": [mean_std(m, math.nan) for m in ordered["gaussian_mean"]],
        "BLEU-4": [mean_std(m, math.nan) for m in ordered["bleu4_mean"]],
    })
