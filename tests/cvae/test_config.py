"""cvae.config: the schema (every field documented, validated on construction) and its flat view."""

import pytest

from cvae.config import ExperimentConfig, flatten
from cvae.errors import ConfigError
from tests.conftest import tiny_config


def test_defaults_are_documented_everywhere():
    sections = [ExperimentConfig] + [field.annotation for field in ExperimentConfig.model_fields.values()
                                     if isinstance(field.annotation, type) and hasattr(field.annotation,
                                                                                       "model_fields")]
    for section in sections:
        for name, field in section.model_fields.items():
            assert field.description, f"{section.__name__}.{name} has no docstring"


def test_flat_has_every_field():
    flat = ExperimentConfig().flat()
    assert flat["optim.lr"] == ExperimentConfig().optim.lr
    assert "kl.free_bits" in flat and "train.seed" in flat


def test_an_unknown_device_name_fails_validation():
    with pytest.raises(ConfigError, match=r"key train\.device"):
        tiny_config(train={"device": "gpu"})


def test_flatten_joins_nested_keys_with_dots():
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": 2}) == {"a.b": 1, "a.c.d": None, "e": 2}


def test_cond_size_must_stay_below_hidden_size():
    with pytest.raises(ValueError, match="cond_size"):
        ExperimentConfig.model_validate({"model": {"hidden_size": 8, "cond_size": 8}})


def test_the_schema_is_walked_once_into_every_dotted_key_with_its_type() -> None:
    from cvae.config import ExperimentConfig, KLConfig, flatten, is_section, scalar_type, schema_fields

    fields = schema_fields()
    leaves = {key for key, annotation in fields.items() if not is_section(annotation)}
    assert leaves == set(flatten(ExperimentConfig().model_dump()))
    assert fields["kl"] is KLConfig and is_section(fields["kl"]) and not is_section(fields["kl.beta_max"])
    assert scalar_type(fields["optim.clip_norm"]) is float and scalar_type(fields["model.rnn"]) is str
    assert scalar_type(fields["model.latent_size"]) is int and scalar_type(fields["train.bucket"]) is bool
