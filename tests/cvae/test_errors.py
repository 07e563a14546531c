"""cvae.errors: one error root whose messages are one bounded line, and validation errors named by their key."""

import pytest
from pydantic import ValidationError

from cvae.config import ExperimentConfig
from cvae.errors import MAX_MESSAGE, ConfigError, UserError, describe_validation_error, one_line, short_repr


def test_every_message_is_one_bounded_line():
    assert str(ConfigError("a\nb   c")) == "a b c"
    assert len(str(ConfigError("x" * 100_000))) == MAX_MESSAGE


def test_one_line_folds_whitespace_and_cuts_at_the_limit():
    assert one_line("a\n\n  b\tc") == "a b c"
    assert one_line("x" * 20, limit=10) == "xxxxxxx..."
    assert one_line("x" * 10, limit=10) == "x" * 10


def test_one_line_shortens_a_long_path_and_keeps_the_reason_whole():
    path = "/work/" + "d" * 400 + "/spec.yaml"
    line = one_line(f"{path}: key study.name: the file name is not a valid study name; set study.name")
    assert len(line) <= MAX_MESSAGE and line.startswith("/work/ddd") and "...ddd" in line
    assert line.endswith("d/spec.yaml: key study.name: the file name is not a valid study name; set study.name")


@pytest.mark.parametrize("limit", [10, 40, 300])
def test_one_line_never_exceeds_its_limit(limit):
    import random

    rng = random.Random(limit)
    for _ in range(200):
        text = " ".join("w" * rng.randint(1, 90) for _ in range(rng.randint(1, 30)))
        assert len(one_line(text, limit=limit)) <= limit


def test_every_user_error_is_a_value_error_under_one_root():
    assert issubclass(ConfigError, UserError) and issubclass(UserError, ValueError)


def test_short_repr_bounds_a_huge_value():
    assert short_repr(list(range(10_000))) == "[0, 1, 2, 3, 4, 5, 6, 7, ...]"
    assert len(short_repr("x" * 100_000)) <= 60


def _validation_error(raw: dict) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        ExperimentConfig.model_validate(raw)
    return info.value


def test_a_validation_error_names_the_source_and_the_dotted_key():
    err = _validation_error({"optim": {"lr": [1] * 10_000}})
    message = describe_validation_error(err, schema=ExperimentConfig, source="x.yaml")
    assert message == "x.yaml: key optim.lr: Input should be a valid number, got [1, 1, 1, 1, 1, 1, 1, 1, ...]"


def test_an_unknown_key_gets_the_closest_name_or_the_allowed_ones():
    close = _validation_error({"optim": {"lrr": 1}})
    assert describe_validation_error(close, schema=ExperimentConfig, source="x.yaml", prefix="search.") == (
        "x.yaml: key search.optim.lrr: unknown key (did you mean 'search.optim.lr'?)")
    far = _validation_error({"optim": {"zzzzzz": 1}})
    assert "unknown key (allowed: name, lr, " in describe_validation_error(far, schema=ExperimentConfig, source="x")
