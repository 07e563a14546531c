"""cvae.scoring: objectives, statuses and the one ranking (a collapsed configuration never wins)."""

import math

import pytest

from cvae.scoring import (checkpoint_status, checkpoint_values, epoch_health, objective_values, qualifies, rank,
                          run_status)

HEALTHY = {"latent/kl": 12.0, "latent/active_units": 20, "latent/logvar_absmax": 3.0, "test/bleu4": 0.9,
           "test/gaussian": 0.4, "test/gaussian_unique": 0.4, "val/bleu4": 0.9, "val/gaussian": 0.4}


def test_objective_values():
    assert objective_values(0.6, 0.2, objective="bleu4") == [0.6]
    assert objective_values(0.6, 0.2, objective="min_of_both") == [0.2]
    assert objective_values(0.6, 0.2, objective="pareto") == [0.6, 0.2]
    assert objective_values(0.6, 0.2, objective="bleu4+gaussian") == [pytest.approx(0.8)]
    with pytest.raises(ValueError, match="unknown objective"):
        objective_values(0.6, 0.2, objective="bleu")


def test_checkpoint_values_read_the_distinct_row_validation_figure():
    # a decoder stuck on one row: lab Gaussian 1.0 on the test draw, but 1/100 distinct rows on validation
    stuck = {**HEALTHY, "test/gaussian": 1.0, "val/gaussian": 0.01, "val/bleu4": 0.07}
    assert checkpoint_values(stuck, objective="bleu4+gaussian") == [pytest.approx(0.08)]


@pytest.mark.parametrize(("change", "expected"), [
    ({}, "works"),
    ({"test/bleu4": 0.5}, "weak"),
    ({"test/gaussian_unique": 0.1, "test/gaussian": 0.9}, "weak"),  # the lab's score alone never passes the line
    ({"latent/kl": 0.05}, "collapsed"),
    ({"latent/active_units": 0, "latent/kl": 3.0}, "collapsed"),
    ({"latent/kl": 30.0, "test/gaussian_unique": 0.0}, "prior_hole"),
    ({"latent/kl": 8e12}, "unstable"),
    ({"latent/logvar_absmax": 80.0}, "unstable"),
    ({"latent/kl": math.inf}, "unstable"),
    ({"val/bleu4": math.nan}, "unstable"),
])
def test_checkpoint_status(change, expected):
    assert checkpoint_status({**HEALTHY, **change}) == expected


def test_run_status_keeps_a_detector_stop_and_a_divergence():
    assert run_status(status="diverged", metrics={}) == "diverged"
    assert run_status(status="collapsed", metrics=HEALTHY) == "collapsed"
    assert run_status(status="ok", metrics={}) == "failed"
    assert run_status(status="ok", metrics=HEALTHY) == "works"
    assert epoch_health(HEALTHY) == "ok"


@pytest.mark.parametrize(("statuses", "expected"), [
    (["works", "weak"], True), (["works", "collapsed", "weak"], True), (["works", "collapsed"], False),
    (["collapsed", "collapsed"], False), (["prior_hole"], False), (["diverged", "works", "unstable"], False),
    ([], False), (["failed"], False),
])
def test_qualifies(statuses, expected):
    assert qualifies(statuses) is expected


def test_rank_puts_a_collapsed_gaussian_one_below_a_healthy_configuration():
    # the collapsed configuration's lab figures would win (Gaussian 1.0); its objective is high too here on purpose
    ranked = rank({"collapsed": [("collapsed", 1.9), ("collapsed", 1.8)],
                   "healthy": [("works", 1.2), ("weak", 0.9)],
                   "hole": [("prior_hole", 1.95), ("works", 1.3)],
                   "nothing": [("diverged", None)]})
    assert [key for key, _, _ in ranked][:1] == ["healthy"]
    assert [ok for _, ok, _ in ranked] == [True, False, False, False]
    assert ranked[0][2] == pytest.approx(1.05)
    assert ranked[-1][0] == "nothing" and math.isnan(ranked[-1][2])


def test_rank_by_worst_seed_or_mean_minus_std_prefers_the_robust_configuration():
    seeds = {"lucky": [("works", 1.6), ("weak", 0.6), ("works", 1.5)],  # mean 1.23, worst 0.6
             "steady": [("works", 1.2), ("works", 1.15), ("works", 1.1)]}  # mean 1.15, worst 1.1
    assert rank(seeds)[0][0] == "lucky"
    assert rank(seeds, rank_by="worst")[0][0] == "steady"
    assert rank(seeds, rank_by="mean-std")[0][0] == "steady"
    # a seed without an objective (diverged) is the worst possible seed for a robust ranking
    assert rank({"a": [("works", 1.0), ("works", 1.0), ("diverged", None)]}, rank_by="worst")[0][2] == 0.0
    with pytest.raises(ValueError, match="unknown rank_by"):
        rank(seeds, rank_by="median")


def test_configurations_that_mostly_work_rank_before_merely_healthy_ones():
    ranked = rank({"bleu_heavy": [("weak", 1.2), ("weak", 1.1), ("works", 1.2)],
                   "working": [("works", 1.0), ("works", 1.0), ("weak", 0.9)]})
    assert [key for key, _, _ in ranked] == ["working", "bleu_heavy"]
