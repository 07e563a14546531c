"""studies.report.read: MLflow runs read back as typed tables, and a study recorded under older names refused."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

from studies import best, report
from studies.testing import make_trial, write_study


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


def test_a_study_recorded_before_the_namespaces_is_refused_not_misread(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="old", trials=[make_trial(number=0, overrides={}, seed=0, status="works")])
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("old").experiment_id],
                                filter_string="tags.`cvae.role` = 'trial'")
    client.log_metric(run.info.run_id, "best/select_bleu4", 0.9)  # what the study wrote before test/, val/
    assert best.main(["old", "--tracking-uri", uri]) == 2
    assert "recorded with the metric names used before they were namespaced" in capsys.readouterr().err
