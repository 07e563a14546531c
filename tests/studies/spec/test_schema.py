"""studies.spec.schema: the spec's schema (every field documented), a Spec's grid and configurations, the
one key of a configuration, and study.confirm.set (the confirmation trained at another fidelity: experiment keys
set after the searched values, refused in one line naming study.confirm.set.KEY, over generated keys and
values)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cvae.config import ExperimentConfig, schema_fields
from studies.spec import SEED_KEY, Space, SpecFile, StudySettings, config_key, load_spec
from studies.spec.schema import SECTIONS
from tests.studies.spec.conftest import BASE, error_of, write


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


# --- study.confirm.set ----------------------------------------------------------------------------------------------

SEARCH = "search: {optim.lr: {choices: [0.01, 0.02]}}\n"
LEAVES = sorted(key for key, annotation in schema_fields().items()
                if "." in key and not (isinstance(annotation, type) and issubclass(annotation, BaseModel)))
"""Every experiment key below a section: what study.confirm.set may name."""


def _spec(tmp_path: Path, confirm_set: str) -> Path:
    return write(tmp_path, "spec.yaml", BASE + SEARCH +
                 f"study: {{seeds: [0], confirm: {{top: 1, seeds: [5], set: {confirm_set}}}}}\n")


def test_the_confirmation_trains_with_the_set_keys_and_the_search_without_them(tmp_path: Path) -> None:
    for written in ("{train.epochs: 7, model.word_dropout: 0.25}", "{train: {epochs: 7}, model: {word_dropout: 0.25}}"):
        spec = load_spec(_spec(tmp_path, written))
        config = spec.grid_configs()[1]
        searched = spec.config_for({**config, SEED_KEY: 0})
        confirmation = spec.confirmation([config])
        confirmed = confirmation.config_for({**config, SEED_KEY: 5})
        assert (searched.train.epochs, searched.model.word_dropout) == (spec.base.train.epochs, 0.0)
        assert (confirmed.train.epochs, confirmed.model.word_dropout, confirmed.optim.lr) == (7, 0.25, 0.02)
        assert confirmed.train.seed == 5 and confirmation.digest != load_spec(_spec(tmp_path, "{}")).confirmation(
            [config]).digest  # another fidelity is another confirmation study


def test_without_set_the_confirmation_trains_the_searched_configuration(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "{}"))
    config = spec.grid_configs()[0]
    assert spec.confirmation([config]).config_for({**config, SEED_KEY: 5}) == spec.config_for(
        {**config, SEED_KEY: 5})


def test_a_searched_key_and_the_seed_are_refused_by_name(tmp_path: Path) -> None:
    assert "key study.confirm.set.optim.lr: is searched (search.optim.lr)" in error_of(
        _spec(tmp_path, "{optim.lr: 0.5}"))
    assert "key study.confirm.set.optim.lr: is searched" in error_of(_spec(tmp_path, "{optim: {lr: 0.5}}"))
    assert f"key study.confirm.set.{SEED_KEY}: the confirmation's seeds are study.confirm.seeds" in error_of(
        _spec(tmp_path, "{train.seed: 3}"))


KEYS = st.sampled_from(LEAVES) | st.text(alphabet="abcxyz_.", min_size=1, max_size=12)
VALUES = st.sampled_from([None, True, 0, 1, -1, 30, 0.5, 1e9, "x", "", [1], {"a": 1}])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, value=VALUES)
def test_any_key_and_value_loads_and_applies_or_is_one_line_naming_it(tmp_path: Path, key: str, value) -> None:
    import json

    from cvae.errors import ConfigError

    path = _spec(tmp_path, json.dumps({key: value}))
    try:
        spec = load_spec(path)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}: key study.confirm.set"), message
        return
    # accepted: an experiment leaf the search holds fixed, and the confirmation trains with it
    assert key in LEAVES and key not in (SEED_KEY, "optim.lr")
    config = spec.grid_configs()[0]
    confirmed = spec.confirmation([config]).config_for({**config, SEED_KEY: 5}).flat()[key]
    assert confirmed == value or str(confirmed) == str(value)


def test_a_confirmation_run_knows_the_key_its_configuration_had_in_the_search(tmp_path: Path) -> None:
    from studies.contract import TAG_CONFIG_KEY, TAG_SEARCHED_KEY, Phase
    from studies.spec import config_key
    from studies.tracking import trial_tags

    spec = load_spec(_spec(tmp_path, "{train.epochs: 7}"))
    config = {**spec.grid_configs()[0], SEED_KEY: 5}
    confirmation = spec.confirmation([spec.grid_configs()[0]])
    searched = config_key(spec.config_for(config))
    assert confirmation.searched_key(config) == searched != config_key(confirmation.config_for(config))
    assert spec.searched_key(config) == searched  # the search's own runs: their key
    tags = trial_tags(parent_run_id=None, study="s", number=0, key=config_key(confirmation.config_for(config)),
                      seed=5, phase=Phase.CONFIRM, searched_key=searched)
    assert tags[TAG_SEARCHED_KEY] == searched != tags[TAG_CONFIG_KEY]
    assert TAG_SEARCHED_KEY not in trial_tags(parent_run_id=None, study="s", number=0, key=searched, seed=0,
                                              phase=Phase.SEARCH, searched_key=searched)
