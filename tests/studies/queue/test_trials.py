"""studies.queue.trials: opening a study (and refusing one made from another spec), a trial's params, which trials
are done, the pruner a spec names, and how the study's configurations rank."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from cvae.errors import ConfigError
from studies import contract
from studies.queue.settled import SettledPruner
from studies.queue.storage import open_storage
from studies.queue.trials import Ranked, is_done, open_study, pruner, ranked_configurations, to_confirm, trial_params
from studies.spec import load_spec


def test_resume_refuses_a_study_made_from_another_spec(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "s.journal"))
    open_study(spec=load_spec("smoke.yaml"), storage=storage, label="test")
    with pytest.raises(ConfigError, match="different experiment"):
        open_study(spec=load_spec("smoke.yaml", overrides=["train.epochs=3"]), storage=storage, label="test")


def test_a_study_is_made_once_and_records_its_spec(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml")
    storage = open_storage(str(tmp_path / "s.journal"))
    study = open_study(spec=spec, storage=storage, label="test")
    again = open_study(spec=spec, storage=storage, label="test")
    assert again._study_id == study._study_id and len(optuna.get_all_study_names(storage)) == 1
    assert again.user_attrs[contract.SPEC_DIGEST] == spec.digest
    assert again.user_attrs[contract.OBJECTIVE] == spec.settings.objective


def test_a_waiting_trial_has_its_enqueued_params() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"kl": "a", "train.seed": 1})
    (waiting,) = study.get_trials()
    assert waiting.params == {} and trial_params(waiting) == {"kl": "a", "train.seed": 1}


def frozen(state: TrialState, status: str | None = None, **attrs) -> optuna.trial.FrozenTrial:
    value = 1.0 if state == TrialState.COMPLETE else None
    return create_trial(state=state, value=value, user_attrs={**({contract.STATUS: status} if status else {}),
                                                                **attrs})


@pytest.mark.parametrize(("state", "status", "done"), [
    (TrialState.COMPLETE, "works", True), (TrialState.PRUNED, "pruned", True),
    (TrialState.PRUNED, contract.DUPLICATE, False), (TrialState.FAIL, "diverged", True),
    (TrialState.FAIL, "unstable", True), (TrialState.FAIL, "failed", False), (TrialState.FAIL, None, False),
])
def test_is_done(state, status, done) -> None:
    assert is_done(frozen(state, status)) is done


@pytest.mark.parametrize(("name", "kind"), [("median", optuna.pruners.MedianPruner),
                                            ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
                                            ("hyperband", optuna.pruners.HyperbandPruner),
                                            ("none", optuna.pruners.NopPruner),
                                            ("settled", SettledPruner)])
def test_pruner_is_the_one_the_spec_names(name, kind) -> None:
    assert type(pruner(name, epochs=4)) is kind


def seed_trial(config: str, seed: int, status: str, bleu: float) -> optuna.trial.FrozenTrial:
    attrs = {contract.STATUS: status, contract.CONFIG_KEY: config, contract.best("val/bleu4"): bleu,
             contract.best("val/gaussian"): 0.2}
    state = TrialState.FAIL if status in ("diverged", "failed") else TrialState.COMPLETE
    return create_trial(state=state, value=None if state == TrialState.FAIL else bleu + 0.2, user_attrs=attrs,
                        params={"train.seed": seed}, distributions={"train.seed": CategoricalDistribution([0, 1, 2])})


def test_configurations_rank_healthy_first_and_crashed_seeds_are_left_out() -> None:
    trials = [seed_trial("collapsed", 0, "collapsed", 0.9), seed_trial("collapsed", 1, "collapsed", 0.9),
              seed_trial("healthy", 0, "works", 0.6), seed_trial("healthy", 1, "weak", 0.5),
              seed_trial("healthy", 2, "failed", 0.0)]
    ranked = ranked_configurations(trials=trials, objective="bleu4+gaussian")
    assert [(ok, [t.user_attrs[contract.CONFIG_KEY] for t in seeds]) for ok, _, seeds in ranked] == [
        (True, ["healthy", "healthy"]), (False, ["collapsed", "collapsed"])]


def ranked_item(ok: bool, score: float) -> Ranked:
    return Ranked(ok, score, [])


@pytest.mark.parametrize(("scores", "within", "kept"), [
    ([1.4, 1.35, 1.0, 0.9], None, [1.4, 1.35, 1.0]),   # no price: the top 3
    ([1.4, 1.35, 1.0, 0.9], 0.1, [1.4, 1.35]),          # 1.0 is not within noise of the leader
    ([1.4, 1.2, 1.3], 0.0, [1.4]),                       # the leader is always confirmed
    ([float("nan"), 1.0], 5.0, [float("nan")]),          # a leader without a figure keeps only itself
])
def test_the_confirmation_retrains_the_top_configurations_within_noise_of_the_leader(scores, within, kept) -> None:
    ranked = [ranked_item(True, score) for score in scores] + [ranked_item(False, 9.0)]
    chosen = to_confirm(ranked, top=3, within=within)
    assert [item.score for item in chosen] == pytest.approx(kept, nan_ok=True)
    assert all(item.ok for item in chosen)  # a configuration that does not qualify is never confirmed
