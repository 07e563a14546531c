"""studies.queue.settled: a trial is stopped only when it is far below every finished `works` trial at the same
epoch, from the minimum epoch on, with enough `works` trials to compare with; other statuses never set the floor."""

from __future__ import annotations

import optuna
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState, create_trial

from studies import contract
from studies.queue.settled import FAR_BELOW, SettledPruner, best_up_to

EPOCHS = 8
curve = st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=EPOCHS, max_size=EPOCHS)


def finished(values: list[float], status: str) -> optuna.trial.FrozenTrial:
    return create_trial(state=TrialState.COMPLETE, value=max(values), user_attrs={contract.STATUS: status},
                        intermediate_values=dict(enumerate(values, start=1)))


def study_of(*trials: optuna.trial.FrozenTrial, pruner: SettledPruner) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for trial in trials:
        study.add_trial(trial)
    return study


def stopped_at(study: optuna.Study, values: list[float]) -> int | None:
    """Report ``values`` epoch by epoch as a worker does; -> the epoch the pruner stopped it at, None: never."""
    trial = study.ask()
    for epoch, value in enumerate(values, start=1):
        trial.report(value, epoch)
        if trial.should_prune():
            return epoch
    return None


@settings(max_examples=60, deadline=None)
@given(works=st.lists(curve, min_size=1, max_size=4), weak=st.lists(curve, max_size=3), pick=st.integers(0, 3))
def test_a_run_that_works_is_never_stopped(works, weak, pick) -> None:
    pruner = SettledPruner(epochs=EPOCHS)
    study = study_of(*(finished(v, "works") for v in works), *(finished(v, "weak") for v in weak), pruner=pruner)
    assert stopped_at(study, works[pick % len(works)]) is None  # the same curve again: never below its own floor


@settings(max_examples=60, deadline=None)
@given(works=st.lists(st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=EPOCHS, max_size=EPOCHS),
                      min_size=2, max_size=4),
       share=st.floats(min_value=0.0, max_value=FAR_BELOW * 0.99))
def test_a_run_far_below_every_working_run_stops_at_the_first_epoch_allowed(works, share) -> None:
    pruner = SettledPruner(epochs=EPOCHS)
    study = study_of(*(finished(v, "works") for v in works), pruner=pruner)
    floor = min(min(values) for values in works)  # below share x floor at every epoch: below every works best
    assert stopped_at(study, [share * floor] * EPOCHS) == pruner.min_epoch


def test_no_stop_before_the_minimum_epoch_nor_with_too_few_working_runs() -> None:
    pruner = SettledPruner(epochs=EPOCHS, min_epoch=5)
    study = study_of(finished([1.5] * EPOCHS, "works"), finished([1.5] * EPOCHS, "works"), pruner=pruner)
    assert stopped_at(study, [0.1] * EPOCHS) == 5
    lone = study_of(finished([1.5] * EPOCHS, "works"), finished([1.5] * EPOCHS, "weak"),
                    finished([1.5] * EPOCHS, "collapsed"), pruner=pruner)
    assert stopped_at(lone, [0.1] * EPOCHS) is None  # one `works` trial is not enough; other statuses never count


def test_a_run_that_climbs_above_the_line_in_time_goes_on() -> None:
    pruner = SettledPruner(epochs=EPOCHS, min_epoch=2)
    study = study_of(finished([0.2, 0.8, 1.2, 1.4, 1.5, 1.5, 1.5, 1.5], "works"),
                     finished([0.3, 1.0, 1.3, 1.4, 1.5, 1.6, 1.6, 1.6], "works"), pruner=pruner)
    # the floor at epoch 2 is 0.8 (best so far of the lower works run): 0.45 stays above half of it, then climbs
    assert stopped_at(study, [0.1, 0.45, 0.7, 1.0, 1.2, 1.3, 1.4, 1.4]) is None
    assert stopped_at(study, [0.1, 0.3, 0.9, 1.0, 1.2, 1.3, 1.4, 1.4]) == 2


def test_best_up_to_skips_non_finite_reports_and_later_epochs() -> None:
    trial = create_trial(state=TrialState.COMPLETE, value=1.0,
                         intermediate_values={1: 0.2, 2: float("nan"), 3: 0.9})
    assert best_up_to(trial, 2) == 0.2 and best_up_to(trial, 3) == 0.9 and best_up_to(trial, 0) is None
