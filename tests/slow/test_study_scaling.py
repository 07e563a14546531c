"""benchmarks.study_scaling end to end on a tiny model: two real studies (1 and 2 workers), and the figures it
promises (its timings are not checked: benchmarks are programs, not timed tests)."""

import re

import pytest

from benchmarks import study_scaling


@pytest.mark.slow  # two real studies
def test_study_scaling_prints_speed_up_and_mlflow_share(capsys):
    assert study_scaling.main(["--trials", "2", "--epochs", "1", "--verbs", "20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^1 worker\(s\): 2 trials", out, re.M) and re.search(r"^2 worker\(s\): 2 trials", out, re.M)
    assert re.search(r"^speed-up, trial span: +[0-9.]+x$", out, re.M)
    assert len(re.findall(r"^MLflow logging with [12] worker\(s\): .*\([0-9.]+ %\)$", out, re.M)) == 2
