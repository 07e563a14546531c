"""The demo study (good, diverged, collapsed, prior-hole, pruned and failed trials) in a real sqlite MLflow store
and its report, shared by the tests of studies.report and studies.best; and how those tests recompute from the
logged trials what the report should say."""

from __future__ import annotations

import pytest

from studies import report
from studies.testing import demo_trials, write_study


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo study (good, diverged, collapsed, prior-hole, pruned and failed trials) and its report."""
    root = tmp_path_factory.mktemp("demo")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    trials = demo_trials()
    ids = write_study(tracking_uri=uri, study="demo", trials=trials, artifact_location=root / "artifacts")
    out = report.build_report(study="demo", tracking_uri=uri, out=root / "report")
    return {"uri": uri, "trials": trials, "out": out, "md": (out / "report.md").read_text(), **ids}


def _by_config(trials):
    groups: dict[str, list] = {}
    for trial in trials:
        if trial.status != "failed":
            groups.setdefault(trial.config_key, []).append(trial)
    return groups


def _objective(trial) -> float:
    """The study's objective (BLEU-4 + Gaussian) on the chosen checkpoint's checkpoint-choice figures."""
    return trial.best["best/val/bleu4"] + trial.best["best/val/gaussian"]


HEALTHY = ("works", "weak")


def _qualifies(seeds) -> bool:
    return sum(t.status in HEALTHY for t in seeds) * 2 > len(seeds)
