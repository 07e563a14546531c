"""studies.preflight.study: what a study will train is checked before it starts: every configuration fits the
machine's memory."""

from __future__ import annotations

import pytest

from cvae.errors import ConfigError


def test_a_searched_value_that_cannot_fit_the_machine_is_refused_before_anything_runs(tmp_path):
    from studies.preflight import check_resources
    from studies.spec import load_spec

    check_resources(load_spec("smoke.yaml"))  # the project's own study fits
    spec = load_spec("smoke.yaml", overrides=["search.train.batch_size={choices: [32, 1000000]}",
                                              "model.hidden_size=4096"])
    with pytest.raises(ConfigError, match=r"smoke.yaml \(searched values .*'train.batch_size': 1000000.*\): key "
                                          r"train.batch_size: a training batch would take about"):
        check_resources(spec)
    ranged = load_spec("smoke.yaml", overrides=["search.train.select_samples={low: 10, high: 1000000, log: true}",
                                                "study.sampler=random", "study.trials=3", "model.hidden_size=4096"])
    with pytest.raises(ConfigError, match=r"key train.select_samples: decoding the noise draws"):
        check_resources(ranged)
