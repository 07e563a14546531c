"""The trial queue without training: grid enqueueing, draws for tpe/random, resume, and the one state decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from cvae.trainer import TrainResult
from studies.spec import SEED_KEY, load_spec
from studies.queue.claim import claim, pending, prepare
from studies.queue.trials import is_done, open_study, trial_params
from studies.queue.storage import open_storage
from studies.worker import settle


def items(study) -> list[tuple]:
    return [tuple(sorted(trial_params(t).items())) for t in study.get_trials() if is_done(t)]


def finish_all(spec, storage, lock: Path) -> list[int]:
    """Claim and complete trials until the queue says done; -> numbers claimed."""
    numbers = []
    while (trial := claim(spec=spec, storage=storage, lock=lock)) is not None:
        numbers.append(trial.number)
        trial.study.tell(trial, 0.5)
    return numbers


def test_grid_enqueues_every_configuration_and_seed_once(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml")
    storage = open_storage(str(tmp_path / "s.journal"))
    study = open_study(spec=spec, storage=storage, label="test")
    assert prepare(study=study, spec=spec) == []
    assert pending(study=study, spec=spec) == 4
    prepare(study=study, spec=spec)  # again: nothing added
    assert len(study.get_trials()) == 4
    assert finish_all(spec, storage, tmp_path / "lock") == [0, 1, 2, 3]
    assert len(set(items(study))) == 4 and pending(study=study, spec=spec) == 0


def test_spec_without_search_is_one_configuration_per_seed(tmp_path: Path) -> None:
    spec_file = tmp_path / "one.yaml"
    spec_file.write_text("extends: smoke.yaml\nsearch: null\nstudy: {name: one, seeds: [3, 4, 5]}\n")
    spec = load_spec(spec_file)
    storage = open_storage(str(tmp_path / "s.journal"))
    study = open_study(spec=spec, storage=storage, label="test")
    prepare(study=study, spec=spec)
    assert [t.params or trial_params(t) for t in study.get_trials()] == [{SEED_KEY: s} for s in (3, 4, 5)]
    assert finish_all(spec, storage, tmp_path / "lock") == [0, 1, 2]


def test_stale_running_trial_is_failed_and_requeued(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml")
    storage = open_storage(str(tmp_path / "s.journal"))
    study = open_study(spec=spec, storage=storage, label="test")
    prepare(study=study, spec=spec)
    crashed = claim(spec=spec, storage=storage, lock=tmp_path / "lock")  # left RUNNING, as by a killed worker
    done = claim(spec=spec, storage=storage, lock=tmp_path / "lock")
    done.study.tell(done, 0.1)
    stale = prepare(study=study, spec=spec)
    assert [t.number for t in stale] == [crashed.number]
    trials = study.get_trials()
    assert trials[crashed.number].state == TrialState.FAIL
    assert trial_params(trials[-1]) == crashed.params and trials[-1].state == TrialState.WAITING
    finish_all(spec, storage, tmp_path / "lock")
    assert sorted(items(study)) == sorted(set(items(study))) and len(items(study)) == 4


def test_random_sampler_draws_each_configuration_once_for_every_seed(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml", overrides=["study.sampler=random", "study.trials=3", "study.seeds=[0,1,2]",
                                              "search.model.latent_size={low: 2, high: 64, log: true}"])
    storage = open_storage(str(tmp_path / "s.journal"))
    study = open_study(spec=spec, storage=storage, label="test")
    prepare(study=study, spec=spec)
    assert pending(study=study, spec=spec) == 9
    finish_all(spec, storage, tmp_path / "lock")
    done = [trial_params(t) for t in study.get_trials() if is_done(t)]
    configs = {tuple((k, v) for k, v in sorted(p.items()) if k != SEED_KEY) for p in done}
    assert len(done) == 9 and len(configs) == 3
    for config in configs:
        seeds = sorted(p[SEED_KEY] for p in done if tuple((k, v) for k, v in sorted(p.items()) if k != SEED_KEY)
                       == config)
        assert seeds == [0, 1, 2]
    assert claim(spec=spec, storage=storage, lock=tmp_path / "lock") is None
    prepare(study=study, spec=spec)
    assert pending(study=study, spec=spec) == 0


def test_random_sampler_prunes_duplicate_draws_of_a_small_space(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml", overrides=["study.sampler=random", "study.trials=2", "study.seeds=[0]"])
    storage = open_storage(str(tmp_path / "s.journal"))
    study = open_study(spec=spec, storage=storage, label="test")
    finish_all(spec, storage, tmp_path / "lock")
    assert len(items(study)) == 2 and len(set(items(study))) == 2
    duplicates = [t for t in study.get_trials() if t.user_attrs.get("status") == "duplicate"]
    assert all(t.state == TrialState.PRUNED for t in duplicates)


def test_resume_refuses_a_study_made_from_another_spec(tmp_path: Path) -> None:
    from cvae.errors import ConfigError

    storage = open_storage(str(tmp_path / "s.journal"))
    open_study(spec=load_spec("smoke.yaml"), storage=storage, label="test")
    with pytest.raises(ConfigError, match="different experiment"):
        open_study(spec=load_spec("smoke.yaml", overrides=["train.epochs=3"]), storage=storage, label="test")


def result(status: str, metrics: dict[str, float] | None = None) -> TrainResult:
    config = load_spec("smoke.yaml").base
    return TrainResult(status=status, config=config, best_epoch=1 if metrics else None, metrics=metrics or {},
                       history=[], state_dict=None, samples={}, steps=3, wall_time_s=0.1)


GOOD = {"test/bleu4": 0.6, "test/gaussian": 0.3, "test/gaussian_unique": 0.3, "val/bleu4": 0.6,
        "val/gaussian": 0.3, "latent/kl": 8.0, "latent/active_units": 8.0, "latent/logvar_absmax": 2.0}


@pytest.mark.parametrize("train_result, error, interrupted, expected", [
    (result("ok", GOOD), None, False, (TrialState.COMPLETE, "weak", "FINISHED", [0.9])),
    (result("ok", {**GOOD, "test/bleu4": 0.8}), None, False, (TrialState.COMPLETE, "works", "FINISHED", [0.9])),
    (result("ok", {**GOOD, "latent/kl": 0.01}), None, False, (TrialState.COMPLETE, "collapsed", "FINISHED", [0.9])),
    (result("ok", {**GOOD, "latent/kl": 200.0, "test/gaussian_unique": 0.0, "val/gaussian": 0.0}), None, False,
     (TrialState.COMPLETE, "prior_hole", "FINISHED", [0.6])),
    (result("ok", {**GOOD, "latent/kl": 8e12}), None, False, (TrialState.COMPLETE, "unstable", "FINISHED", [0.9])),
    (result("collapsed", GOOD), None, False, (TrialState.COMPLETE, "collapsed", "FINISHED", [0.9])),
    (result("diverged"), None, False, (TrialState.FAIL, "diverged", "FAILED", None)),
    (result("stopped", GOOD), None, False, (TrialState.PRUNED, "pruned", "FINISHED", None)),
    (None, "RuntimeError: boom", False, (TrialState.FAIL, "failed", "FAILED", None)),
    (None, None, True, (TrialState.FAIL, "failed", "KILLED", None)),
])
def test_settle_is_the_one_state_decision(train_result, error, interrupted, expected) -> None:
    outcome = settle(result=train_result, error=error, objective="bleu4+gaussian", interrupted=interrupted)
    values = None if outcome.values is None else [pytest.approx(v) for v in outcome.values]
    assert (outcome.state, outcome.status, outcome.run_status, values) == expected
