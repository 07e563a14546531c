"""The `settled` pruner: stop a trial whose fate is plain, a `weak` run far below every run that works.

Optuna's stock pruners compare a trial with the median or the top share of the study at the same epoch; on these
curves they stop trials that would have worked (a cosine learning-rate schedule improves late, and a third of a
study's trials fail by design), as ``benchmarks.pruners`` measured. This one asks a narrower question: is the trial
so far below the *worst* trial of this study that ended `works` that it cannot be one? Concretely, at an evaluated
epoch e >= ``min_epoch``, with at least ``min_works`` finished `works` trials that reported epoch e, the trial is
stopped when its best objective up to e is below ``far_below`` x the lowest of those trials' best objectives up to
e. Collapsed and overflowing runs are stopped by the trainer's own detector (``train.collapse_patience``), diverged
ones at the step; what is left to stop is the weak run (Adam at 10x its learning rate: BLEU-4 0.10 for 30 epochs).

A stopped trial is PRUNED (status `pruned`), shown as such in the report; the statuses of the trials it compares
with are the user attrs the workers set (``studies.contract.STATUS``) before telling the study.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from cvae.scoring import Status
from studies import contract

FAR_BELOW = 0.5
"""Stop below this share of the worst `works` trial's best objective at the same epoch."""
MIN_WORKS = 2
"""`works` trials that must have reported the epoch before anything is compared with them."""
MIN_EPOCH_SHARE = 0.25
"""No stop before this share of the epochs (the KL warm-up and the first large learning rates are behind)."""


def best_up_to(trial: FrozenTrial, epoch: int) -> float | None:
    """The trial's best reported objective at epochs <= ``epoch`` (None: nothing reported by then)."""
    values = [value for step, value in trial.intermediate_values.items() if step <= epoch and math.isfinite(value)]
    return max(values) if values else None


class SettledPruner(optuna.pruners.BasePruner):
    """Prunes a trial far below every finished `works` trial at the same epoch (module docstring)."""

    def __init__(self, *, epochs: int, far_below: float = FAR_BELOW, min_works: int = MIN_WORKS,
                 min_epoch: int | None = None) -> None:
        self.far_below, self.min_works = far_below, min_works
        self.min_epoch = max(1, round(MIN_EPOCH_SHARE * epochs)) if min_epoch is None else min_epoch

    def floor(self, study: optuna.Study, epoch: int) -> float | None:
        """The lowest best-so-far objective at ``epoch`` among finished `works` trials (None: too few of them)."""
        bests = [best_up_to(trial, epoch) for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if trial.user_attrs.get(contract.STATUS) == Status.WORKS and epoch in trial.intermediate_values]
        found = [value for value in bests if value is not None]
        return min(found) if len(found) >= self.min_works else None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        epoch = trial.last_step
        if epoch is None or epoch < self.min_epoch:
            return False
        floor, best = self.floor(study, epoch), best_up_to(trial, epoch)
        return floor is not None and best is not None and best < self.far_below * floor
