"""studies.report, studies.results, studies.best over real sqlite MLflow stores holding synthetic studies."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from studies import best, report
from studies.labels import MAX_LEVELS, fmt_value, kl_label, levels, pow10
from studies.report.analysis import pareto_mask
from tests.synthetic_store import demo_trials, failures_only_trials, make_trial, write_study

FIGURES = ("scores.png", "explosion_map.png", "explosion_trace.png", "collapse_map.png", "curves.png")


@pytest.fixture(scope="module")
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


def _mean_std(values: list[float]) -> str:
    """As the report's tables print it: non-breaking spaces keep `mean ± std` on one line."""
    return f"{statistics.mean(values):.3f}\u00a0±\u00a0{statistics.stdev(values):.3f}"


def test_report_writes_every_file_and_embeds_images(demo):
    out = demo["out"]
    for name in (*FIGURES, "importance.png", "report.md", "report.html", "trials.csv", "configs.csv"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 6
    assert ".png\"" not in html  # nothing links to a file next to it
    for name in (*FIGURES, "importance.png"):
        assert f"]({name})" in demo["md"]


def _objective(trial) -> float:
    """The study's objective (BLEU-4 + Gaussian) on the chosen checkpoint's checkpoint-choice figures."""
    return trial.best["best/val/bleu4"] + trial.best["best/val/gaussian"]


HEALTHY = ("works", "weak")


def _qualifies(seeds) -> bool:
    return sum(t.status in HEALTHY for t in seeds) * 2 > len(seeds)


def test_leaderboard_matches_what_was_logged(demo):
    groups = _by_config(demo["trials"])
    objective = {key: statistics.mean(_objective(t) for t in ts if t.best)
                 for key, ts in groups.items() if any(t.best for t in ts) and _qualifies(ts)}
    winner = max(objective, key=objective.get)
    seeds = groups[winner]
    configs = pd.read_csv(demo["out"] / "configs.csv")
    row = configs.iloc[0]
    assert row["config_key"] == winner
    assert row["best/test/bleu4 mean"] == pytest.approx(statistics.mean(t.best["best/test/bleu4"] for t in seeds), abs=1e-12)
    assert row["best/test/gaussian std"] == pytest.approx(statistics.stdev(t.best["best/test/gaussian"] for t in seeds))
    leaderboard = demo["md"].split("## Leaderboard")[1].split("##")[0]
    first = next(line for line in leaderboard.splitlines() if line.startswith("| 1 |"))
    assert _mean_std([t.best["best/test/bleu4"] for t in seeds]) in first
    assert _mean_std([t.best["best/heldout/bleu4"] for t in seeds]) in first
    assert "| works 2 |" in first
    ranked = sorted(objective.values(), reverse=True)
    qualified = configs[configs["qualifies"]]
    assert qualified["objective mean"].dropna().tolist() == pytest.approx(ranked)


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
    from tests.synthetic_store import GAMING
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


def test_divergence_rates_and_explosion_table(demo):
    groups = _by_config(demo["trials"])
    configs = pd.read_csv(demo["out"] / "configs.csv").set_index("config_key")
    for key, seeds in groups.items():
        expected = sum(t.status == "diverged" for t in seeds) / len(seeds)
        assert configs.loc[key, "divergence_rate"] == expected
        assert configs.loc[key, "n"] == len(seeds)
    explosion = demo["md"].split("## Where gradients explode")[1].split("##")[0]
    # sgd at lr 0.5 diverged in epoch 1 on both seeds (no grad figure: inf); at 0.05 one seed of two
    assert "| sgd | 0.5 | none | 2/2 (100%) | inf | inf | 72 | non-finite gradient in encoder |" in explosion
    assert "| sgd | 0.05 | none | 1/2 (50%) |" in explosion


def test_collapse_table_and_findings(demo):
    collapse = demo["md"].split("## Where the posterior collapses")[1].split("##")[0]
    assert "| monotonic | 8 | 2/2 (100%) | 0/2 (0%) | 0.0\u00a0±\u00a00.0 |" in collapse
    assert "| constant β=0 | 32 | 0/2 (0%) | 2/2 (100%) | 32.0\u00a0±\u00a00.0 |" in collapse
    findings = demo["md"].split("## Findings")[1].split("##")[0]
    assert "sgd at lr 0.5, clip norm none: 2/2 (100%)" in findings
    assert "at latent size 8: 2/2 (100%)" in findings and "constant β=0 at latent size 32" in findings


def test_trials_frame_types_and_exclusions(demo):
    trials = pd.read_csv(demo["out"] / "trials.csv")
    assert len(trials) == len(demo["trials"])
    runs = report.load_study(client=MlflowClient(demo["uri"]), study="demo")
    frame = runs.trials
    assert runs.objective == "bleu4+gaussian" and runs.parent_run_id == demo["parent_run_id"]
    assert frame["model.latent_size"].dtype == "int64"
    assert frame["optim.lr"].dtype == "float64"
    assert str(frame["model.latent_to_cell"].dtype) == "boolean"
    sgd = frame[frame["optim.name"] == "sgd"]
    assert sgd["optim.clip_norm"].isna().all()  # logged as the string "None"
    assert frame["data.max_verbs"].isna().all()
    failed = frame[frame["status"] == "failed"]
    assert len(failed) == 1
    configs = pd.read_csv(demo["out"] / "configs.csv").set_index("config_key")
    assert configs.loc[failed.iloc[0]["config_key"], "n"] == 2  # the failed seed is not aggregated


def test_report_is_logged_to_the_parent_run(demo):
    client = MlflowClient(demo["uri"])
    names = {Path(a.path).name for a in client.list_artifacts(demo["parent_run_id"], "report")}
    assert {"report.md", "report.html", *FIGURES, "importance.png"} <= names
    # the logged Markdown links its figures by absolute URL, through a bare `mlflow ui` (MLflow's viewer prints a
    # relative image link as text); the one on disk links the files next to it
    logged = Path(client.download_artifacts(demo["parent_run_id"], "report/report.md")).read_text()
    run = demo["parent_run_id"]
    for name in (*FIGURES, "importance.png"):
        assert f"](http://127.0.0.1:5000/get-artifact?path=report%2F{name}&run_uuid={run})" in logged
        assert f"]({name})" in demo["md"]


def test_study_with_only_pruned_and_diverged_trials_renders(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="doomed", trials=failures_only_trials(), artifact_location=tmp_path / "a")
    out = report.build_report(study="doomed", tracking_uri=uri, out=tmp_path / "report")
    for name in FIGURES:
        assert (out / name).stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "_no configuration produced a checkpoint_" in md
    assert "Placeholder: no configuration has a checkpoint" in md
    assert "Placeholder: no trial finished training" in md
    assert "Skipped: importance needs at least 3 configurations with an objective" in md
    assert "| sgd | 0.5 | none | 2/2 (100%) | inf |" in md


def test_study_without_trials_renders(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="empty", trials=[], artifact_location=tmp_path / "a")
    out = report.build_report(study="empty", tracking_uri=uri, out=tmp_path / "report")
    assert "0 trials (none) in 0 configurations" in (out / "report.md").read_text()
    assert all((out / name).stat().st_size > 0 for name in FIGURES)
    assert best.main(["empty", "--tracking-uri", uri]) == 2


def test_study_without_lr_dimension_or_parent_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = [make_trial(number=i, overrides={"model.latent_size": latent}, seed=seed, status="works", epochs=2)
              for i, (latent, seed) in enumerate([(8, 0), (8, 1), (16, 0), (16, 1)])]
    write_study(tracking_uri=uri, study="plain", trials=trials, artifact_location=tmp_path / "a", parent=False)
    out = report.build_report(study="plain", tracking_uri=uri, out=tmp_path / "report")
    md = (out / "report.md").read_text()
    assert "Placeholder: the study varies neither the learning rate nor the clip norm" in md
    assert "Skipped: importance needs at least 3 configurations with an objective" in md
    assert "varied: `model.latent_size`" in md
    assert (out / "collapse_map.png").stat().st_size > 0


def test_cli_errors_are_one_line_exit_2(demo, tmp_path, capsys):
    assert report.main(["nosuch", "--tracking-uri", demo["uri"], "--out", str(tmp_path)]) == 2
    assert report.main(["demo", "--tracking-uri", f"sqlite:///{tmp_path / 'absent.db'}"]) == 2
    assert best.main(["dem", "--tracking-uri", demo["uri"]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert "no study named 'nosuch'" in err[0] and "no MLflow store" in err[1] and "did you mean 'demo'" in err[2]
    assert not (tmp_path / "absent.db").exists()


def test_best_prints_the_configuration_and_its_best_seed_run(demo, capsys):
    assert best.main(["demo", "--tracking-uri", demo["uri"]]) == 0
    printed = capsys.readouterr().out
    groups = _by_config(demo["trials"])
    winner = max((ts for ts in groups.values() if all(t.best for t in ts) and _qualifies(ts)),
                 key=lambda ts: statistics.mean(_objective(t) for t in ts))
    top = max(winner, key=_objective)
    assert f"best configuration {top.config_key}:" in printed
    assert f"checkpoint: run {top.run_id} (seed {top.params['train.seed']}," in printed
    for key in ("optim.clip_norm", "optim.lr", "model.latent_size", "kl.schedule"):
        assert f"    {key} = {fmt_value(top.params[key])}\n" in printed


@pytest.mark.parametrize(("value", "text"), [(1234.0, "1e3"), (0.05, "5e-2"), (96.0, "1e2"), (math.inf, "inf"),
                                             (1.7976931348623157e308, "inf"), (math.nan, ""), (0.0, "0")])
def test_pow10(value, text):
    assert pow10(value) == text


@pytest.mark.parametrize(("schedule", "beta", "free_bits", "label"), [
    ("constant", 0.0, 0.0, "constant β=0"), ("monotonic", 1.0, 0.0, "monotonic"),
    ("cyclical", 1.0, 0.1, "cyclical + free bits 0.1"), ("cyclical", 0.5, 0.0, "cyclical β=0.5")])
def test_kl_label(schedule, beta, free_bits, label):
    assert kl_label(schedule=schedule, beta_max=beta, free_bits=free_bits) == label


def test_pareto_mask_keeps_non_dominated_points():
    points = pd.DataFrame({"x": [0.1, 0.3, 0.2, 0.3, math.nan], "y": [0.9, 0.5, 0.4, 0.6, 1.0]})
    assert pareto_mask(points, x="x", y="y").tolist() == [True, False, False, True, False]


def test_levels_bin_a_continuous_search_and_put_none_last():
    few = levels(pd.Series([0.01, None, 0.001, 0.01]))
    assert list(few.categories) == ["0.001", "0.01", "none"] and list(few) == ["0.01", "none", "0.001", "0.01"]
    many = levels(pd.Series([10 ** (-4 + 3 * i / 49) for i in range(50)]))
    assert len(many.categories) == MAX_LEVELS
    assert many[0] == many.categories[0] == "0.0001–0.00024" and many[-1] == many.categories[-1]


def test_importance_names_the_settings_inside_each_block(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = []
    for block, configs in (("explosion", [{"optim.name": n, "optim.lr": lr, "optim.clip_norm": c}
                                          for n, lr, c in (("adam", 0.005, 1.0), ("adam", 0.05, None),
                                                           ("sgd", 3.0, 1.0), ("adam", 0.005, None))]),
                           ("collapse", [{"kl.schedule": k, "model.latent_size": z}
                                         for k, z in (("constant", 16), ("cyclical", 16), ("cyclical", 64))])):
        for overrides in configs:
            for seed in (0, 1):
                trial = make_trial(number=len(trials), overrides=overrides, seed=seed, status="works")
                trial.tags["cvae.blocks"] = block
                trials.append(trial)
    write_study(tracking_uri=uri, study="blocked", trials=trials)
    runs = report.load_study(client=MlflowClient(uri), study="blocked")
    panels, note = report.build.setting_importances(trials=runs.trials, objective="bleu4+gaussian")
    assert note is None and set(panels) == {"explosion block", "collapse block"}
    assert set(panels["explosion block"]) == {"optim.name", "optim.lr", "optim.clip_norm"}
    assert set(panels["collapse block"]) == {"kl.schedule", "model.latent_size"}
    assert sum(panels["collapse block"].values()) == pytest.approx(1.0)


def test_a_study_recorded_before_the_namespaces_is_refused_not_misread(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="old", trials=[make_trial(number=0, overrides={}, seed=0, status="works")])
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("old").experiment_id],
                                filter_string="tags.`cvae.role` = 'trial'")
    client.log_metric(run.info.run_id, "best/select_bleu4", 0.9)  # what the study wrote before test/, val/
    assert best.main(["old", "--tracking-uri", uri]) == 2
    assert "recorded with the metric names used before they were namespaced" in capsys.readouterr().err
