"""studies.queue.claim without training: grid enqueueing, draws for tpe/random, resume after a dead worker."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from studies.queue.claim import claim, pending, prepare
from studies.queue.storage import open_storage
from studies.queue.trials import is_done, open_study, trial_params
from studies.spec import SEED_KEY, load_spec


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
