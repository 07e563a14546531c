"""studies.spec.space: search dimensions (ranges expanded for the grid, values of the field's type) and the
ranges Optuna would warn about, refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cvae.errors import ConfigError
from studies.spec import Space, load_spec
from tests.studies.spec.conftest import BASE, write


def test_ranges_expand_for_grid_and_values_take_the_field_type(tmp_path: Path) -> None:
    spec = write(tmp_path, "ranges.yaml", BASE + (
        "search:\n  model.latent_size: {low: 4, high: 10, step: 3}\n"
        "  optim.lr: {low: 0.01, high: 0.03, step: 0.01}\n  optim.momentum: {choices: [0, 0.5]}\n"))
    loaded = load_spec(spec)
    dims = {d.key: d for d in loaded.space}
    assert dims["model.latent_size"].kind == "int" and dims["model.latent_size"].grid_values() == (4, 7, 10)
    assert dims["optim.lr"].grid_values() == (0.01, 0.02, 0.03)
    assert dims["optim.momentum"].choices == (0.0, 0.5)  # read as the field's type
    assert loaded.grid_size == 18
    quoted = write(tmp_path, "quoted.yaml", BASE + "search:\n  optim.momentum: {choices: ['0', 0.5]}\n")
    with pytest.raises(ConfigError, match=r"key search.optim.momentum.choices\[0\]: .*valid number, got '0'"):
        load_spec(quoted)  # text is not a number, whatever it spells


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
