"""studies.report.analysis over real sqlite MLflow stores: seeds aggregated, a collapsed configuration never
ranked first, no winner said plainly, unstable figures kept out of means; the Pareto front."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from studies import best, report
from studies.report.analysis import pareto_mask
from studies.testing import make_trial, write_study
from tests.studies.conftest import _objective


def test_a_collapsed_configuration_with_lab_gaussian_one_never_ranks_first(demo):
    gaming = next(t for t in demo["trials"] if t.params["optim.lr"] == 0.03)
    assert gaming.best["best/test/gaussian"] == 1.0 and gaming.best["best/test/bleu4"] < 0.1
    assert _objective(gaming) > max(_objective(t) for t in demo["trials"] if t.best and t.status != "collapsed")
    configs = pd.read_csv(demo["out"] / "configs.csv")
    assert configs.iloc[0]["config_key"] != gaming.config_key
    row = configs.set_index("config_key").loc[gaming.config_key]
    assert not row["qualifies"]
    leaderboard = demo["md"].split("## Leaderboard")[1].split("##")[0]
    line = next(line for line in leaderboard.splitlines() if "collapsed 2" in line)
    assert line.startswith("| – |")  # listed without a rank
    findings = demo["md"].split("## Findings")[1].split("##")[0]
    assert "**Winner** (search only: not confirmed on fresh seeds)" in findings
    assert "lr 0.03" not in findings.split("**Winner**")[1]
    assert best.find_best(tracking_uri=demo["uri"], study="demo").config_key != gaming.config_key


def test_nothing_qualifies_is_said_plainly(tmp_path, capsys):
    from studies.testing import GAMING
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = [make_trial(number=s, overrides=GAMING, seed=s, status="collapsed", gaming=True) for s in (0, 1)]
    trials += [make_trial(number=2 + s, overrides={"optim.lr": 0.01}, seed=s, status=st)
               for s, st in enumerate(("prior_hole", "works"))]
    write_study(tracking_uri=uri, study="none", trials=trials)
    out = report.build_report(study="none", tracking_uri=uri, out=tmp_path / "report")
    findings = (out / "report.md").read_text().split("## Findings")[1].split("##")[0]
    assert "**Winner**: none. No configuration qualifies" in findings
    assert best.main(["none", "--tracking-uri", uri]) == 2
    assert "no winner: no configuration qualifies" in capsys.readouterr().err


def test_unstable_figures_never_reach_a_mean(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = {"optim.name": "sgd", "optim.lr": 0.3, "optim.clip_norm": None}
    trials = [make_trial(number=s, overrides=overrides, seed=s, status=st)
              for s, st in enumerate(("unstable", "works", "unstable"))]
    write_study(tracking_uri=uri, study="overflow", trials=trials)
    out = report.build_report(study="overflow", tracking_uri=uri, out=tmp_path / "report")
    configs = pd.read_csv(out / "configs.csv")
    assert configs.loc[0, "best/latent/kl mean"] == pytest.approx(trials[1].best["best/latent/kl"])  # the healthy seed alone
    assert configs.loc[0, "best/latent/kl count"] == 1 and not configs.loc[0, "qualifies"]
    assert "e+12" not in (out / "report.md").read_text() and "8000000000000" not in (out / "report.md").read_text()


def test_pareto_mask_keeps_non_dominated_points():
    points = pd.DataFrame({"x": [0.1, 0.3, 0.2, 0.3, math.nan], "y": [0.9, 0.5, 0.4, 0.6, 1.0]})
    assert pareto_mask(points, x="x", y="y").tolist() == [True, False, False, True, False]
