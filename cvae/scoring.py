"""How checkpoints, runs and configurations are judged: the objectives and the statuses, defined once.

Everything that ranks (checkpoint choice in ``cvae.trainer``, Optuna's trial values, the report's leaderboard and
closing table, ``studies.best``) and everything that names what happened to a run imports this module.

Why the objectives use a *distinct-row* Gaussian figure. The lab's Gaussian score counts a draw as a hit when its
four words form a training row; a collapsed decoder that emits one training verb for every z scores 1.0 on it
(our own ablation crowned such a model: BLEU-4 0.07, Gaussian 1.0). ``val/gaussian`` (the checkpoint-choice
figure) and the collapse-proof reported figure ``test/gaussian_unique`` count the *distinct* training rows hit per
draw instead, so a decoder that repeats one row scores 1/n. The lab's score is still reported as ``test/gaussian``
for comparison with the lab, and never ranks anything.

Statuses, in the order they are decided:
- ``diverged``: the loss or a gradient became non-finite (training stopped at that step);
- ``unstable``: the latent overflowed (KL or |log-variance| beyond ``UNSTABLE_KL`` / ``UNSTABLE_LOGVAR``, or a
  non-finite figure): the run's figures are not numbers to average;
- ``collapsed``: the posterior fell onto the prior (KL < ``COLLAPSE_KL`` nats or no active unit), at the chosen
  checkpoint or for ``train.collapse_patience`` evaluated epochs after the KL warm-up (the detector stops it);
- ``prior_hole``: good conversions (BLEU-4 >= ``PRIOR_HOLE_BLEU``) from a latent far from the prior
  (KL > ``PRIOR_HOLE_KL``) whose noise decodes to nothing valid (distinct Gaussian <= ``PRIOR_HOLE_GAUSSIAN``);
- ``works``: passes the lab's line at its checkpoint, test BLEU-4 >= ``LAB_BLEU`` and distinct-row Gaussian
  >= ``LAB_GAUSSIAN``;
- ``weak``: none of the above: no failure detected, below the line.
A study adds ``pruned`` (stopped by the pruner) and ``failed`` (a crash; not data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum

from cvae.names import (
    LATENT_ACTIVE_UNITS,
    LATENT_KL,
    LATENT_LOGVAR_ABSMAX,
    TEST_BLEU,
    TEST_GAUSSIAN_UNIQUE,
    VAL_BLEU,
    VAL_GAUSSIAN,
)

LAB_BLEU = 0.70
"""The lab's full-credit line for BLEU-4 on the test conversions."""
LAB_GAUSSIAN = 0.30
"""The lab's full-credit line for the Gaussian score (here: its distinct-row form)."""
COLLAPSE_KL = 0.1
"""Below this KL (nats, summed over dimensions, averaged over the training words) the posterior has collapsed."""
PRIOR_HOLE_KL = 5.0
"""Above this KL, with good conversions and noise that decodes to nothing valid: a prior hole."""
PRIOR_HOLE_GAUSSIAN = 0.02
PRIOR_HOLE_BLEU = 0.5
UNSTABLE_KL = 1e4
"""A KL above this many nats is an overflowing latent, not a figure (seen: 8e12 nats with grad norms of 5e9)."""
UNSTABLE_LOGVAR = 30.0
"""A posterior log-variance beyond +-this (a variance of e^30) is overflowing."""

OBJECTIVES: tuple[str, ...] = ("bleu4", "gaussian", "bleu4+gaussian", "min_of_both", "pareto")
"""Objective names: BLEU-4, Gaussian, their sum, their minimum, or both (Pareto); ``gaussian`` is distinct-row."""
DEFAULT_OBJECTIVE = "bleu4+gaussian"
"""The objective of a study, and the checkpoint criterion of a run, unless they say otherwise."""
CRITERIA: tuple[str, ...] = (*(o for o in OBJECTIVES if o != "pareto"), "last")
"""Checkpoint criteria (``train.select``): a single-valued objective, or ``last`` (the last evaluated epoch)."""
class Status(StrEnum):
    """Every status a trial can end with (decided in the order of this module's docstring). A ``StrEnum``: a status
    is also its name as MLflow's tags, Optuna's user attributes and the report's columns hold it."""

    WORKS = "works"
    WEAK = "weak"
    COLLAPSED = "collapsed"
    PRIOR_HOLE = "prior_hole"
    UNSTABLE = "unstable"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    FAILED = "failed"


class Health(StrEnum):
    """The health of one evaluated epoch's latent (``epoch_health``)."""

    OK = "ok"
    COLLAPSED = Status.COLLAPSED.value
    UNSTABLE = Status.UNSTABLE.value


STATUSES: tuple[Status, ...] = tuple(Status)
"""Every status a trial can end with."""
HEALTHY: tuple[Status, ...] = (Status.WORKS, Status.WEAK)
"""Statuses of runs whose figures may win a ranking."""
FINISHED: tuple[Status, ...] = (Status.WORKS, Status.WEAK, Status.COLLAPSED, Status.PRIOR_HOLE, Status.UNSTABLE)
"""Statuses of runs that trained to a decision and chose a checkpoint."""
FAILURES: tuple[Status, ...] = (Status.COLLAPSED, Status.PRIOR_HOLE, Status.UNSTABLE, Status.DIVERGED)
"""Statuses that are failures of the configuration (a configuration mostly in these never wins)."""



def objective_values(bleu4: float, gaussian: float, *, objective: str) -> list[float]:
    """The value(s) to maximise from a checkpoint's BLEU-4 and distinct-row Gaussian figures."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    return {"bleu4": [bleu4], "gaussian": [gaussian], "bleu4+gaussian": [bleu4 + gaussian],
            "min_of_both": [min(bleu4, gaussian)], "pareto": [bleu4, gaussian]}[objective]


def objective_score(bleu4: float, gaussian: float, *, objective: str) -> float:
    """One number to rank by: the objective, or for ``pareto`` the sum of both."""
    values = objective_values(bleu4, gaussian, objective=objective)
    return values[0] if len(values) == 1 else sum(values)


def checkpoint_values(metrics: Mapping[str, float], *, objective: str) -> list[float]:
    """The objective of an evaluated epoch, from its checkpoint-choice figures ``val/*``."""
    return objective_values(metrics[VAL_BLEU], metrics[VAL_GAUSSIAN], objective=objective)


def _finite(metrics: Mapping[str, float], keys: Iterable[str]) -> bool:
    return all(math.isfinite(metrics[k]) for k in keys if k in metrics)


def epoch_health(metrics: Mapping[str, float]) -> Health:
    """`unstable`, `collapsed` or `ok` for one evaluated epoch's latent figures (`latent/kl`, `latent/active_units`,
    `latent/logvar_absmax`)."""
    kl, au = metrics.get(LATENT_KL), metrics.get(LATENT_ACTIVE_UNITS)
    if not _finite(metrics, (LATENT_KL, LATENT_LOGVAR_ABSMAX, TEST_BLEU, VAL_BLEU)):
        return Health.UNSTABLE
    if (kl is not None and kl > UNSTABLE_KL) or metrics.get(LATENT_LOGVAR_ABSMAX, 0.0) > UNSTABLE_LOGVAR:
        return Health.UNSTABLE
    if (kl is not None and kl < COLLAPSE_KL) or au == 0:
        return Health.COLLAPSED
    return Health.OK


def checkpoint_status(metrics: Mapping[str, float]) -> Status:
    """Status of a run from its chosen checkpoint's figures: unstable, collapsed, prior_hole, works or weak."""
    health = epoch_health(metrics)
    if health != Health.OK:
        return Status(health)
    bleu, unique = metrics.get(TEST_BLEU, 0.0), metrics.get(TEST_GAUSSIAN_UNIQUE, 0.0)
    if metrics.get(LATENT_KL, 0.0) > PRIOR_HOLE_KL and unique <= PRIOR_HOLE_GAUSSIAN and bleu >= PRIOR_HOLE_BLEU:
        return Status.PRIOR_HOLE
    if bleu >= LAB_BLEU and unique >= LAB_GAUSSIAN:
        return Status.WORKS
    return Status.WEAK


def run_status(*, status: str, metrics: Mapping[str, float]) -> Status:
    """Status of a finished ``cvae.trainer.fit`` run: its own ending (diverged, collapsed or unstable when a detector
    stopped it) or, for a run that trained on, its checkpoint's status; ``failed`` without a checkpoint."""
    if status in (Status.DIVERGED, Status.COLLAPSED, Status.UNSTABLE):
        return Status(status)
    if not metrics:
        return Status.FAILED
    return checkpoint_status(metrics)


def qualifies(statuses: Iterable[str]) -> bool:
    """Whether a configuration may win: most of its seeds are healthy (works or weak), none failed to a crash
    counted against it, and at least one seed ran. A configuration whose seeds mostly collapsed, diverged, sat
    in a prior hole or overflowed never qualifies."""
    counted = [s for s in statuses if s in HEALTHY or s in FAILURES or s == Status.PRUNED]
    healthy = sum(s in HEALTHY for s in counted)
    return bool(counted) and healthy * 2 > len(counted)


RANK_BY: tuple[str, ...] = ("mean", "worst", "mean-std")
"""How a configuration's seeds are summed up for ranking: their mean objective, their worst seed, or the mean
minus the standard deviation (a tuning study that wants a recipe that works on every seed uses one of the last)."""
RANK_BY_TEXT = {"mean": "the mean over seeds", "worst": "the worst seed",
                "mean-std": "the mean minus the standard deviation over seeds"}
"""How each ``rank_by`` is said in the report, the summary and ``studies.best``."""


def seed_summary(scores: list[float], *, rank_by: str = "mean") -> float:
    """One number for a configuration's per-seed objectives (NaN without any)."""
    if rank_by not in RANK_BY:
        raise ValueError(f"unknown rank_by {rank_by!r}; expected one of {', '.join(RANK_BY)}")
    if not scores:
        return math.nan
    mean = sum(scores) / len(scores)
    if rank_by == "worst":
        return min(scores)
    if rank_by == "mean-std":
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) if len(scores) > 1 else 0.0
        return mean - std
    return mean


def rank(configurations: Mapping[str, Iterable[tuple[str, float | None]]], *,
         rank_by: str = "mean") -> list[tuple[str, bool, float]]:
    """The one ranking of configurations, best first: ``{key: [(status, objective or None), ...] per seed}`` ->
    ``[(key, qualifies, summary), ...]``. Configurations that qualify come first, and among them those whose
    seeds mostly pass the lab's line (`works`): the harness answers "which settings work?"; within each group,
    the higher ``seed_summary`` (``rank_by``) of the objectives of the seeds that have one (NaN last). A seed that
    failed without an objective (diverged, pruned) counts as the worst possible for `worst` and `mean-std`: it
    scores 0."""
    ranked = []
    for key, seeds in configurations.items():
        seeds = list(seeds)
        scores = [s for _, s in seeds if s is not None and math.isfinite(s)]
        if rank_by != "mean" and scores:
            scores += [0.0] * (len(seeds) - len(scores))
        ranked.append((key, qualifies(status for status, _ in seeds), mostly_works(status for status, _ in seeds),
                       seed_summary(scores, rank_by=rank_by)))
    ranked.sort(key=lambda item: (not item[1], not item[2], math.isnan(item[3]),
                                  -item[3] if not math.isnan(item[3]) else 0.0))
    return [(key, ok, value) for key, ok, _, value in ranked]


def mostly_works(statuses: Iterable[str]) -> bool:
    """Whether most of a configuration's seeds pass the lab's line (status `works`)."""
    statuses = [s for s in statuses if s != Status.FAILED]
    return bool(statuses) and sum(s == Status.WORKS for s in statuses) * 2 > len(statuses)
