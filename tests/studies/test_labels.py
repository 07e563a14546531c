"""studies.labels: how a configuration and a value are shown (one name per configuration, one formatter)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from studies import labels
from studies.labels import (
    MAX_LEVELS,
    config_name,
    fmt_value,
    kl_label,
    levels,
    mean_std,
    mean_std_text,
    pow10,
    rate,
    run_name,
)


@pytest.mark.parametrize(("value", "text"), [(1234.0, "1e3"), (0.05, "5e-2"), (96.0, "1e2"), (math.inf, "inf"),
                                             (1.7976931348623157e308, "inf"), (math.nan, ""), (0.0, "0")])
def test_pow10(value, text):
    assert pow10(value) == text


@pytest.mark.parametrize(("schedule", "beta", "free_bits", "label"), [
    ("constant", 0.0, 0.0, "constant β=0"), ("monotonic", 1.0, 0.0, "monotonic"),
    ("cyclical", 1.0, 0.1, "cyclical + free bits 0.1"), ("cyclical", 0.5, 0.0, "cyclical β=0.5")])
def test_kl_label(schedule, beta, free_bits, label):
    assert kl_label(schedule=schedule, beta_max=beta, free_bits=free_bits) == label


def test_levels_bin_a_continuous_search_and_put_none_last():
    few = levels(pd.Series([0.01, None, 0.001, 0.01]))
    assert list(few.categories) == ["0.001", "0.01", "none"] and list(few) == ["0.01", "none", "0.001", "0.01"]
    many = levels(pd.Series([10 ** (-4 + 3 * i / 49) for i in range(50)]))
    assert len(many.categories) == MAX_LEVELS
    assert many[0] == many.categories[0] == "0.0001–0.00024" and many[-1] == many.categories[-1]


@pytest.mark.parametrize(("value", "text"), [(None, "none"), (math.nan, "none"), (pd.NA, "none"), (0.003, "0.003"),
                                             (1e-05, "1e-05"), (2.0, "2"), (32, "32"), ("adam", "adam"),
                                             (True, "True")])
def test_fmt_value(value, text):
    assert fmt_value(value) == text


def test_mean_std_and_rate_say_when_there_is_nothing_to_show():
    assert mean_std(0.7123, 0.0104) == "0.712 ± 0.010"
    assert mean_std(0.7123, None) == "0.712" and mean_std(0.7, math.nan, digits=1) == "0.7"
    assert mean_std(math.nan, 0.1) == "–" and mean_std_text([]) == "–"
    assert mean_std_text([1.0, 3.0], digits=2) == "2.00 ± 1.41" and mean_std_text([0.5]) == "0.500"
    assert rate(1, 2) == "1/2 (50%)" and rate(0, 0) == "–" and rate(3, math.nan) == "–"


def test_a_configuration_is_named_by_its_varied_settings_and_a_run_by_its_seed_too():
    flat = {"optim.name": "sgd", "optim.lr": 3.0, "optim.clip_norm": None, "kl.schedule": "cyclical",
            "kl.beta_max": 1.0, "kl.free_bits": 0.0, "model.latent_size": 32, "model.hidden_size": 256,
            "train.seed": 1}
    varied = ["optim.lr", "kl.schedule", "model.latent_size", "train.seed"]
    assert config_name(flat, varied=varied) == "sgd lr3 clip- · cyclical · z32"
    assert run_name(flat, varied=varied) == "sgd lr3 clip- · cyclical · z32 · s1"
    assert config_name(flat, varied=[]) == "base"
    assert config_name({**flat, "model.hidden_size": None}, varied=["model.hidden_size"]) == "h-"


def test_every_name_says_its_decoder_and_decoders_order_by_strength():
    lab = {"model.decoder": "lab", "model.source_dropout": 0.5, "model.source_z": "posterior", "train.seed": 3,
           "optim.name": "adam", "optim.lr": 0.005, "optim.clip_norm": 1.0}
    copy = {**lab, "model.decoder": "copy", "model.source_dropout": 0.0}
    assert labels.decoder_label(lab) == "lab"
    assert labels.decoder_label(copy) == "copy z-only 0"
    assert labels.decoder_label({**copy, "model.source_z": "prior"}) == "copy z-only 0 prior z"
    assert labels.decoder_label({**copy, "model.sampling": "lemma"}) == "copy z-only 0 via lemma"
    assert labels.decoder_label({**lab, "model.sampling": "lemma"}) == "lab"  # the lab decoder ignores it
    assert labels.run_name(copy, varied=["model.decoder"]) == "copy z-only 0 · s3"
    assert labels.config_name(lab, varied=["optim.lr"]) == "lab · adam lr0.005 clip1"
    assert labels.config_name({"train.seed": 1}, varied=[]) == "base"  # runs logged before the decoder key
    frame = pd.DataFrame([copy, lab, {**copy, "model.source_dropout": 0.5},
                          {**copy, "model.source_dropout": 0.5, "model.sampling": "lemma"}])
    assert list(labels.decoder_labels(frame).categories) == ["lab", "copy z-only 0.5", "copy z-only 0.5 via lemma",
                                                             "copy z-only 0"]
