"""Study specs: loading, `extends`, `--set`, the search space, and one-line errors naming file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cvae.errors import ConfigError
from cvae.config import ExperimentConfig
from studies.spec.schema import SECTIONS
from studies.spec import SEED_KEY, Space, SpecFile, StudySettings, config_key, load_spec
from studies.secrets import redact

BASE = "extends: baseline.yaml\nmodel: {hidden_size: 32, embed_size: 16, latent_size: 8, cond_size: 4}\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_spec(path, overrides=list(overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


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


def test_smoke_spec_grid_and_configs() -> None:
    spec = load_spec("smoke.yaml")
    assert spec.name == "smoke" and spec.n_configs == 2 and spec.settings.seeds == [0, 1]
    configs = spec.grid_configs()
    assert [set(c) for c in configs] == [{"kl"}, {"kl"}]
    first = spec.config_for({**configs[0], SEED_KEY: 0})
    assert (first.kl.schedule, first.kl.beta_max, first.data.max_verbs) == ("constant", 0.0, 40)
    second_seed = spec.config_for({**configs[0], SEED_KEY: 1})
    other = spec.config_for({**configs[1], SEED_KEY: 0})
    assert other.kl.free_bits == 0.1 and other.kl.beta_max == 1.0
    assert config_key(first) == config_key(second_seed) != config_key(other)
    assert len(config_key(first)) == 12


def test_overrides_reach_study_and_search(tmp_path: Path) -> None:
    spec = load_spec("smoke.yaml", overrides=["train.epochs=3", "study.seeds=[4,5,6]",
                                              "search.optim.clip_norm={choices: [null, 2.0]}"])
    assert spec.base.train.epochs == 3 and spec.settings.seeds == [4, 5, 6]
    assert spec.n_configs == 4
    clip = [c["optim.clip_norm"] for c in spec.grid_configs()]
    assert clip == [None, 2.0, None, 2.0]
    assert spec.config_for({**spec.grid_configs()[0], SEED_KEY: 4}).optim.clip_norm is None


def test_ranges_expand_for_grid_and_values_take_the_field_type(tmp_path: Path) -> None:
    spec = write(tmp_path, "ranges.yaml", BASE + (
        "search:\n  model.latent_size: {low: 4, high: 10, step: 3}\n"
        "  optim.lr: {low: 0.01, high: 0.03, step: 0.01}\n  optim.momentum: {choices: ['0', 0.5]}\n"))
    loaded = load_spec(spec)
    dims = {d.key: d for d in loaded.space}
    assert dims["model.latent_size"].kind == "int" and dims["model.latent_size"].grid_values() == (4, 7, 10)
    assert dims["optim.lr"].grid_values() == (0.01, 0.02, 0.03)
    assert dims["optim.momentum"].choices == (0.0, 0.5)  # read as the field's type
    assert loaded.grid_size == 18


def test_partial_grid_is_a_stable_seeded_subset(tmp_path: Path) -> None:
    spec = write(tmp_path, "grid.yaml", BASE + "search: {model.latent_size: {low: 1, high: 12}}\nstudy: {trials: 4}\n")
    four = load_spec(spec).grid_configs()
    six = load_spec(spec, overrides=["study.trials=6"]).grid_configs()
    assert len(four) == 4 and len(six) == 6
    assert all(c in six for c in four)


def test_no_search_is_one_configuration(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "one.yaml", BASE + "study: {seeds: [0, 1]}\n"))
    assert spec.space == () and spec.n_configs == 1


def test_kl_ablation_spec_has_the_required_blocks() -> None:
    spec = load_spec("kl_ablation.yaml")
    assert [d.key for d in spec.space] == ["blocks"]
    sets = spec.space[0].sets
    explosion = [s for s, label in zip(sets, spec.space[0].choices) if "explosion" in label.split(":")[0]]
    collapse = [s for s, label in zip(sets, spec.space[0].choices) if "collapse" in label.split(":")[0]]
    # explosion: optimizer x learning rate x clip norm, with plain SGD at a high lr without clipping
    assert {s["optim.name"] for s in explosion} == {"sgd", "adam"}
    assert {s["optim.clip_norm"] for s in explosion} == {None, 1.0}
    assert any(s["optim.name"] == "sgd" and s["optim.lr"] >= 1.0 and s["optim.clip_norm"] is None
               for s in explosion)
    assert len({s["optim.lr"] for s in explosion if s["optim.name"] == "adam"}) >= 2
    # collapse: KL schedule x latent size, with no KL term (prior hole) and the full weight from step 0
    configs = [spec.config_for({"blocks": label, "train.seed": 0}) for label in spec.space[0].choices]
    kls = {(c.kl.schedule, c.kl.beta_max) for c in configs}
    assert {("constant", 0.0), ("constant", 1.0)} <= kls and {"monotonic", "cyclical"} <= {k for k, _ in kls}
    assert len({c.model.latent_size for c in configs}) >= 2 and collapse
    # the shared base is trained once and belongs to both blocks
    assert sum("explosion+collapse" in label for label in spec.space[0].choices) == 1
    assert spec.base.train.collapse_patience == 3 and spec.settings.confirm.top == 3
    assert not set(spec.settings.confirm.seeds) & set(spec.settings.seeds)


def test_blocks_spec_errors_name_the_key(tmp_path: Path) -> None:
    assert "key blocks[1].search.settng: unknown config key" in error_of(write(tmp_path, "b.yaml", BASE + (
        "blocks:\n  - {name: a, search: {optim.lr: {choices: [0.01, 0.1]}}}\n"
        "  - {name: b, search: {settng: {choices: [{kl.beta_max: 1.0}]}}}\nstudy: {name: b}\n")))
    assert "key blocks[0].search.setting.choices[0]: unknown config key 'kl.beta'" in error_of(write(
        tmp_path, "c.yaml", BASE + "blocks:\n  - {name: a, search: {setting: {choices: [{kl.beta: 1.0}]}}}\n"
        "study: {name: c}\n"))
    assert "blocks are grids; use sampler: grid" in error_of(write(tmp_path, "d.yaml", BASE + (
        "blocks:\n  - {name: a, search: {optim.lr: {choices: [0.01, 0.1]}}}\n"
        "study: {name: d, sampler: tpe, trials: 2}\n")))
    assert "must be seeds the search never used" in error_of(write(tmp_path, "e.yaml", BASE + (
        "study: {name: e, seeds: [0, 1], confirm: {seeds: [1, 2]}}\n")))


def test_spec_schema_covers_every_experiment_section_and_documents_every_field() -> None:
    assert set(SECTIONS) <= set(SpecFile.model_fields)
    assert set(SECTIONS) == set(ExperimentConfig.model_fields)
    for model in (SpecFile, Space, StudySettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


@pytest.mark.parametrize("url, expected", [
    ("postgresql+psycopg://alice:s3cret@db:5432/optuna", "postgresql+psycopg://alice:***@db:5432/optuna"),
    ("postgresql://bob:p%40ss@host/db?sslmode=require", "postgresql://bob:***@host/db?sslmode=require"),
    ("postgresql://host/db?user=bob&password=hunter2", "postgresql://host/db?user=bob&password=***"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("mlruns/optuna/x.journal", "mlruns/optuna/x.journal"),
])
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_smoke_and_ablation_specs_are_valid_yaml_mappings() -> None:
    for name in ("smoke.yaml", "kl_ablation.yaml"):
        assert isinstance(yaml.safe_load((Path(__file__).parent.parent / "experiments" / name).read_text()), dict)


@pytest.mark.parametrize(("low", "high", "step"), [(0.1, 0.9, 0.2), (0.0, 1.0, 0.1), (1e-4, 1e-3, 1e-4), (4, 64, 4)])
def test_a_stepped_range_that_validates_never_makes_optuna_warn(low, high, step) -> None:
    import warnings

    import optuna

    Space(low=low, high=high, step=step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optuna.distributions.FloatDistribution(low, high, step=step)


@pytest.mark.parametrize(("space", "expected"), [
    ({"low": 0.01, "high": 0.05, "step": 0.1}, "step (0.1) is larger than the range high - low (0.04)"),
    ({"low": 0.1, "high": 0.9, "step": 0.3}, "high - low (0.8) is not a multiple of step (0.3); e.g. high: 0.7"),
])
def test_a_step_optuna_would_warn_about_is_refused(space, expected) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        Space(**space)


def test_huge_grids_and_choice_lists_are_refused_fast(tmp_path: Path) -> None:
    import time

    texts = {
        "range": "search: {optim.lr: {low: 0.001, high: 1.0, step: 1.0e-12}}\n",
        "product": "search: {model.hidden_size: {low: 5, high: 2004}, model.latent_size: {low: 1, high: 1000}}\n",
        "choices": "search: {train.eval_seed: {choices: [" + ", ".join(map(str, range(10_001))) + "]}}\n",
    }
    for name, text in texts.items():
        spec = write(tmp_path, f"{name}.yaml", BASE + text)
        start = time.perf_counter()
        message = error_of(spec)
        assert time.perf_counter() - start < 5, name
        assert "more than" in message, message


def test_one_config_key_for_a_config_its_mlflow_params_and_other_seeds():
    from cvae.config import ExperimentConfig
    from studies.spec import config_key, params_key

    config = ExperimentConfig()
    as_logged = {key: str(value) for key, value in config.flat().items()}  # MLflow params are text
    assert config_key(config) == params_key(as_logged)
    other_seed = config.model_copy(update={"train": config.train.model_copy(update={"seed": 7})})
    assert config_key(other_seed) == config_key(config)
    other_lr = config.model_copy(update={"optim": config.optim.model_copy(update={"lr": 0.02})})
    assert config_key(other_lr) != config_key(config)
