"""studies.report.build over real sqlite MLflow stores holding synthetic studies: every file written, the copy
logged to the parent run, studies with nothing to show, importance within blocks, one-line command errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from studies import best, report
from studies.testing import failures_only_trials, make_trial, write_study

FIGURES = ("scores.png", "explosion_map.png", "explosion_trace.png", "collapse_map.png", "decoder_map.png",
           "curves.png")


def test_report_writes_every_file_and_embeds_images(demo):
    out = demo["out"]
    for name in (*FIGURES, "importance.png", "report.md", "report.html", "trials.csv", "configs.csv"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 7
    assert ".png\"" not in html  # nothing links to a file next to it
    for name in (*FIGURES, "importance.png"):
        assert f"]({name})" in demo["md"]


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
