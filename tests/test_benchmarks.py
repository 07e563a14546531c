"""The benchmarks run end to end on a tiny model and print the figures they promise (their timings are not
checked: benchmarks are programs, not timed tests); the two-study scaling benchmark is in the slow tier
(tests/slow/test_study_scaling.py)."""

import re

import torch

from benchmarks import throughput, time_to_quality

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


def test_pruner_replay_compares_every_pruner_on_a_finished_study(tmp_path, capsys):
    from benchmarks import pruners
    from studies.testing import scale_trials, write_study

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="grid", trials=scale_trials(40, epochs=6))
    assert pruners.main(["grid", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    lines = {name: re.search(rf"^ *{name}: (\d+) epochs \((\d+) % of unpruned\), (\d+) trials pruned", out, re.M)
             for name in pruners.PRUNERS}
    assert all(lines.values()), out
    none = lines["none"]
    assert none.group(2) == "100" and none.group(3) == "0"
    assert all(int(m.group(1)) <= int(none.group(1)) for m in lines.values())  # pruning never trains more
    assert int(lines["median"].group(3)) > 0  # 40 trials of a mixed grid: the median pruner stops some
    assert re.search(r"^(cheapest pruner that keeps|no pruner keeps)", out, re.M)


def test_pruner_replay_refuses_an_unknown_study(tmp_path, capsys):
    from benchmarks import pruners
    from studies.testing import demo_trials, write_study

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="demo", trials=demo_trials())
    capsys.readouterr()  # MLflow's own log lines of writing the store
    assert pruners.main(["nope", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no study named 'nope'" in err


def test_profile_trains_a_study_specs_base_with_a_searched_key_overridden():
    from benchmarks.profile import base_config

    config = base_config("kl_ablation.yaml", overrides=["model.decoder=copy"])  # searched in its decoder block
    assert config.model.decoder == "copy" and config.data.val_verbs == 100  # the base's own keys are kept
    assert base_config("baseline.yaml", overrides=["train.epochs=2"]).train.epochs == 2
