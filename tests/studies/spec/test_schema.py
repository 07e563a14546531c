"""studies.spec.schema: the spec's schema (every field documented), a Spec's grid and configurations, and the
one key of a configuration."""

from __future__ import annotations

from pathlib import Path

from cvae.config import ExperimentConfig
from studies.spec import SEED_KEY, Space, SpecFile, StudySettings, config_key, load_spec
from studies.spec.schema import SECTIONS
from tests.studies.spec.conftest import BASE, write


def test_spec_schema_covers_every_experiment_section_and_documents_every_field() -> None:
    assert set(SECTIONS) <= set(SpecFile.model_fields)
    assert set(SECTIONS) == set(ExperimentConfig.model_fields)
    for model in (SpecFile, Space, StudySettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


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


def test_partial_grid_is_a_stable_seeded_subset(tmp_path: Path) -> None:
    spec = write(tmp_path, "grid.yaml", BASE + "search: {model.latent_size: {low: 1, high: 12}}\nstudy: {trials: 4}\n")
    four = load_spec(spec).grid_configs()
    six = load_spec(spec, overrides=["study.trials=6"]).grid_configs()
    assert len(four) == 4 and len(six) == 6
    assert all(c in six for c in four)


def test_no_search_is_one_configuration(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "one.yaml", BASE + "study: {seeds: [0, 1]}\n"))
    assert spec.space == () and spec.n_configs == 1


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
