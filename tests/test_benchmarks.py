"""The benchmarks run end to end on a tiny model and print the figures they promise (their timings are not
checked: benchmarks are programs, not timed tests)."""

import re

import torch

from benchmarks import study_scaling, throughput, time_to_quality

TINY = ["--set", "data.max_verbs=20", "--set", "data.val_pairs=10", "--set", "data.heldout=null",
        "--set", "model.hidden_size=16", "--set", "model.embed_size=8", "--set", "model.latent_size=4"]


def test_throughput_prints_both_ratios(capsys):
    assert throughput.main([*TINY, "--repeats", "2", "--reference-words", "5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ratio: [0-9.]+x \(counting evaluation: [0-9.]+x\)$", out, re.M), out
    assert out.count("repeat ") == 2
    if torch.cuda.is_available():
        assert len(re.findall(r"^GPU batch \d+: [0-9.]+ words/s .*ratio to 1 CPU thread: [0-9.]+x$", out, re.M)) == 3
    else:
        assert re.search(r"^GPU: none \(torch .* sees no CUDA device\)", out, re.M), out


def test_time_to_quality_reports_each_seed(capsys):
    assert time_to_quality.main([*TINY, "--set", "train.epochs=2", "--seeds", "0", "1",
                                 "--reference-words", "5"]) == 0
    out = capsys.readouterr().out
    assert "seed-style reference:" in out
    assert len(re.findall(r"^seed [01]: (reached|not reached)", out, re.M)) == 2
    assert out.rstrip().splitlines()[-1].startswith("time to quality:")


def test_study_scaling_prints_speed_up_and_mlflow_share(capsys):
    assert study_scaling.main(["--trials", "2", "--epochs", "1", "--verbs", "20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^1 worker\(s\): 2 trials", out, re.M) and re.search(r"^2 worker\(s\): 2 trials", out, re.M)
    assert re.search(r"^speed-up, trial span: +[0-9.]+x$", out, re.M)
    assert len(re.findall(r"^MLflow logging with [12] worker\(s\): .*\([0-9.]+ %\)$", out, re.M)) == 2
