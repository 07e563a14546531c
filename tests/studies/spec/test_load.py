"""studies.spec.load: loading, `extends`, `--set`, and one-line errors naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from studies.spec import SEED_KEY, load_spec
from tests.conftest import ROOT
from tests.studies.spec.conftest import BASE, error_of, write


@pytest.mark.parametrize("text, expected", [
    ("modle: {hidden_size: 3}", ["key modle", "did you mean 'model'"]),
    ("model: {hiden_size: 3}", ["key model.hiden_size", "did you mean 'model.hidden_size'"]),
    ("optim: {lr: -1}", ["key optim.lr", "greater than 0"]),
    ("search: {optim.lrr: {choices: [0.1]}}", ["key search.optim.lrr", "did you mean 'search.optim.lr'"]),
    ("search: {optim.lr: {choices: []}}", ["key search.optim.lr", "empty choices"]),
    ("search: {optim.lr: {low: 1.0, high: 0.1}}", ["key search.optim.lr", "low (1) must be <= high (0.1)"]),
    ("search: {optim.lr: {low: 0.0, high: 0.1, log: true}}", ["key search.optim.lr", "log needs low > 0"]),
    ("search: {optim.lr: {low: 0.1, high: 1, stepp: 0.1}}", ["key search.optim.lr.stepp", "did you mean"]),
    ("search: {optim.lr: {choices: [0.1, -1]}}", ["key search.optim.lr.choices[1]", "greater than 0"]),
    ("search: {optim.name: {choices: [sgd, adamm]}}", ["key search.optim.name.choices[1]", "adamm"]),
    ("search: {optim.name: {low: 0, high: 1}}", ["key search.optim.name", "use choices"]),
    ("search: {model.latent_size: {low: 2.5, high: 8}}", ["key search.model.latent_size.low", "integer"]),
    ("search: {model.latent_size: {choices: [8, 8]}}", ["key search.model.latent_size.choices[1]", "repeats"]),
    ("search: {kl: {choices: [{schedul: constant}]}}", ["key search.kl.choices[0]", "did you mean 'kl.schedule'"]),
    ("search: {kl: {choices: [constant]}}", ["key search.kl.choices[0]", "is a section"]),
    ("search: {kl: {low: 0, high: 1}}", ["key search.kl", "is a section"]),
    ("search: {kl: {choices: [{free_bits: 0.1}]}, kl.free_bits: {choices: [0.0]}}",
     ["key search.kl.free_bits", "sets kl.free_bits, as search.kl does"]),
    ("search: {train.seed: {choices: [1, 2]}}", ["key search.train.seed", "study.seeds"]),
    ("search: {optim.lr: {low: 0.001, high: 0.1, log: true}}", ["key search.optim.lr", "grid sampler needs"]),
    ("search: {optim.lr: {choices: [0.1]}}\nstudy: {sampler: tpe}", ["key study.trials", "required"]),
    ("search: {optim.lr: {choices: [0.1, 0.2]}}\nstudy: {trials: 3}", ["key study.trials", "exceeds"]),
    ("study: {sampler: gird}", ["key study.sampler", "'grid'"]),
    ("study: {seeds: []}", ["key study.seeds", "at least 1"]),
    ("study: {seeds: [1, 1]}", ["key study.seeds", "distinct"]),
    ("study: {workers: 0}", ["key study.workers"]),
    ("study: {objective: pareto, pruner: median}", ["key study", "single objective"]),
    ("study: {name: 'has space'}", ["key study.name"]),
    ("extends: nowhere.yaml", ["key extends", "nowhere.yaml: file not found"]),
])
def test_bad_spec_is_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: list[str]) -> None:
    given = {line.split(":")[0] for line in text.splitlines()}  # a key given twice is an error of its own
    base = "".join(line + "\n" for line in BASE.splitlines() if line.split(":")[0] not in given)
    spec = write(tmp_path, "bad.yaml", base + text + "\n")
    message = error_of(spec)
    assert message.startswith(str(spec)), message
    for part in expected:
        assert part in message, message


def test_error_points_at_the_file_that_sets_the_key(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE + "optim: {lr: -1}\n")
    spec = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain: {epochs: 2}\n")
    assert error_of(spec).startswith(f"{base}: key optim.lr")


def test_study_name_is_not_inherited(tmp_path: Path) -> None:
    spec = write(tmp_path, "mine.yaml", "extends: smoke.yaml\nstudy: {seeds: [3]}\n")
    loaded = load_spec(spec)
    assert loaded.name == "mine" and loaded.settings.seeds == [3] and loaded.settings.sampler == "grid"
    assert load_spec(spec, overrides=["study.name=other"]).name == "other"


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    message = error_of(tmp_path / "a.yaml")
    assert "key extends: cycle a.yaml -> b.yaml -> a.yaml" in message


@pytest.mark.parametrize("overrides, expected", [
    (("optim.lrr=0.1",), "(--set): key optim.lrr: unknown key (did you mean 'optim.lr'?)"),
    (("kl.schedule=constant",), "(--set): key kl.schedule: is searched (search.kl)"),
    (("study.trials=0",), "(--set): key study.trials"),
    (("nonsense",), "expected KEY=VALUE"),
])
def test_bad_override(overrides: tuple[str, ...], expected: str) -> None:
    assert expected in error_of(Path("smoke.yaml"), overrides)


def test_overrides_reach_study_and_search(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml", overrides=["train.epochs=3", "study.seeds=[4,5,6]",
                                              "search.optim.clip_norm={choices: [null, 2.0]}"])
    assert spec.base.train.epochs == 3 and spec.settings.seeds == [4, 5, 6]
    assert spec.n_configs == 4
    clip = [c["optim.clip_norm"] for c in spec.grid_configs()]
    assert clip == [None, 2.0, None, 2.0]
    assert spec.config_for({**spec.grid_configs()[0], SEED_KEY: 4}).optim.clip_norm is None


def test_huge_grids_and_choice_lists_are_refused_fast(tmp_path: Path, monkeypatch) -> None:
    """Counted, not enumerated: no grid is expanded and no choice of an over-long list validated, whatever the
    machine's speed."""
    from studies.spec import space

    validated = []
    original = space.validated_assignments
    monkeypatch.setattr(space, "validated_assignments", lambda *a, **k: validated.append(1) or original(*a, **k))

    def expanded(self):
        raise AssertionError("a grid was enumerated")

    monkeypatch.setattr(space.Dimension, "grid_values", expanded)
    texts = {
        "range": "search: {optim.lr: {low: 0.001, high: 1.0, step: 1.0e-12}}\n",
        "product": "search: {model.hidden_size: {low: 5, high: 2004}, model.latent_size: {low: 1, high: 1000}}\n",
        "choices": "search: {train.eval_seed: {choices: [" + ", ".join(map(str, range(10_001))) + "]}}\n",
    }
    for name, text in texts.items():
        spec = write(tmp_path, f"{name}.yaml", BASE + text)
        validated.clear()
        message = error_of(spec)
        assert len(validated) <= 4, name  # the range's ends, not its values
        assert "more than" in message, message


def test_smoke_and_ablation_specs_are_valid_yaml_mappings() -> None:
    for name in ("smoke.yaml", "kl_ablation.yaml"):
        assert isinstance(yaml.safe_load((ROOT / "experiments" / name).read_text()), dict)
