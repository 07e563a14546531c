"""`python -m studies.run` end to end, as real processes: the smoke study in MLflow and Optuna, rerun, a worker
killed mid-study, MLflow's REST API from a real server, and bad input (exit 2, nothing created)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow import MlflowClient

from cvae.checkpoint import load_checkpoint
from studies import contract
from tests.conftest import ROOT
from tests.servers import free_port, stop, wait_healthy

pytestmark = pytest.mark.slow  # real studies in subprocesses: minutes

CHILD_TAGS = {"cvae.role", "cvae.study", "optuna.trial_number", "optuna.state", "cvae.status", "cvae.config_key",
              "cvae.seed", "cvae.best_epoch", "mlflow.parentRunId"}


def study_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "studies.run", *args, "--no-report"]


def run_study(cwd: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(study_command(*args), cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=timeout)


def load_optuna(folder: Path, name: str) -> optuna.Study:
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "mlruns" / "optuna" / f"{name}.journal"))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


def child_runs(uri: str, name: str) -> tuple[object, list]:
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    parents = [r for r in runs if r.data.tags.get("cvae.role") == "study"]
    assert len(parents) == 1
    return parents[0], [r for r in runs if r.data.tags.get("cvae.role") == "trial"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("smoke")
    uri = f"sqlite:///{folder}/mlflow.db"
    started = time.perf_counter()
    proc = run_study(folder, "smoke.yaml", "--workers", "2", "--tracking-uri", uri)
    return SimpleNamespace(folder=folder, uri=uri, proc=proc, seconds=time.perf_counter() - started)


def test_smoke_study_runs_in_under_a_minute(smoke) -> None:
    assert smoke.proc.returncode == 0, smoke.proc.stderr[-3000:]
    assert smoke.seconds < 60
    assert f"see every run: python -m studies.ui smoke --tracking-uri {smoke.uri}\n" in smoke.proc.stdout
    assert "smoke: 4/4 complete" in smoke.proc.stdout
    assert (smoke.folder / "mlruns" / "optuna" / "smoke.journal").is_file()


def test_mlflow_holds_one_parent_and_four_children(smoke) -> None:
    parent, children = child_runs(smoke.uri, "smoke")
    client = MlflowClient(tracking_uri=smoke.uri)
    assert parent.info.run_name == "smoke" and parent.info.status == "FINISHED"
    assert parent.data.tags["cvae.objective"] == "bleu4+gaussian"
    assert parent.data.tags["cvae.spec"].endswith("smoke.yaml")
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["smoke.yaml"]
    assert len(children) == 4
    assert {(r.data.tags["cvae.config_key"], r.data.tags["cvae.seed"]) for r in children} == {
        (key, seed) for key in {r.data.tags["cvae.config_key"] for r in children} for seed in ("0", "1")}
    assert len({r.data.tags["cvae.config_key"] for r in children}) == 2
    for run in children:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert CHILD_TAGS <= set(tags) and tags["mlflow.parentRunId"] == parent.info.run_id
        # named by the varied setting (the smoke study's KL bundle) and the seed
        assert run.info.run_name.endswith(f" · s{tags['cvae.seed']}") and run.info.status == "FINISHED"
        assert run.info.run_name.startswith("lab · constant β=")  # its decoder, then its settings
        assert tags["optuna.state"] == "COMPLETE"
        assert tags["cvae.status"] in ("works", "weak", "collapsed", "prior_hole")
        assert params["train.seed"] == tags["cvae.seed"] and params["optim.clip_norm"] == "1.0"
        assert params["kl.schedule"] == "constant" and params["model.hidden_size"] == "32" and len(params) > 30
        history = client.get_metric_history(run.info.run_id, "test/bleu4")
        assert sorted(m.step for m in history) == [1, 2]
        for key in ("train/loss", "train/grad_norm_max", "train/grad_norm_encoder_max", "test/gaussian", "latent/kl",
                    "latent/active_units", "latent/mutual_info", "heldout/bleu4", "best/test/bleu4", "best/test/gaussian",
                    "best/epoch", "run/grad_norm_max", "run/diverged", "run/wall_time_s", "run/epochs_done"):
            assert key in metrics, key
        assert metrics["run/epochs_done"] == 2 and metrics["run/diverged"] == 0
        assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == [
            "checkpoint", "config.yaml", "samples.json"]
    local = Path(client.download_artifacts(children[0].info.run_id, "", str(smoke.folder / "download")))
    model, config, payload = load_checkpoint(local / "checkpoint" / "model.pt")
    assert config.model.hidden_size == 32 and payload["epoch"] == int(children[0].data.tags["cvae.best_epoch"])
    samples = json.loads((local / "samples.json").read_text())
    assert len(samples["test"]) == 10 and len(samples["gaussian"]) == 20


def test_optuna_study_has_four_complete_trials(smoke) -> None:
    trials = load_optuna(smoke.folder, "smoke").get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert {(t.params["kl"], t.params["train.seed"]) for t in trials} == {
        (kl, seed) for kl in {t.params["kl"] for t in trials} for seed in (0, 1)}
    for trial in trials:
        attrs = trial.user_attrs  # the objective reads the checkpoint-choice figures, not the reported ones
        assert trial.values[0] == pytest.approx(attrs["best/val/bleu4"] + attrs["best/val/gaussian"])
        assert trial.user_attrs["status"] in ("works", "weak", "collapsed", "prior_hole") and \
            "mlflow_run_id" in trial.user_attrs
        assert sorted(trial.intermediate_values) == [1, 2]
        assert set(attrs) <= set(contract.TRIAL_ATTRS) and contract.BEST_TEST_BLEU in attrs


def test_rerun_adds_no_trial(smoke) -> None:
    proc = run_study(smoke.folder, "smoke.yaml", "--workers", "2", "--tracking-uri", smoke.uri)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 trial(s) to run" in proc.stdout
    assert len(load_optuna(smoke.folder, "smoke").get_trials()) == 4
    parent, children = child_runs(smoke.uri, "smoke")
    assert len(children) == 4 and parent.info.status == "FINISHED"


def test_mlflow_server_serves_the_runs_over_rest(smoke) -> None:
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", smoke.uri, "--workers", "1"],
                              cwd=smoke.folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(server, base, timeout=60, output=lambda: server.stderr.read().decode())
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke",
                                    timeout=10) as response:
            experiment_id = json.load(response)["experiment"]["experiment_id"]
        request = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": [experiment_id]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            runs = json.load(response)["runs"]
        tags = [{t["key"]: t["value"] for t in run["data"]["tags"]} for run in runs]
        assert sorted(t["cvae.role"] for t in tags) == ["study", "trial", "trial", "trial", "trial"]
        parent_id = next(run["info"]["run_id"] for run, t in zip(runs, tags) if t["cvae.role"] == "study")
        assert all(t["mlflow.parentRunId"] == parent_id for t in tags if t["cvae.role"] == "trial")
        assert all(any(m["key"] == "best/test/bleu4" for m in run["data"]["metrics"])
                   for run, t in zip(runs, tags) if t["cvae.role"] == "trial")
    finally:
        stop(server)


def test_killed_worker_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    args = ("smoke.yaml", "--workers", "2", "--set", "train.epochs=25")
    proc = subprocess.Popen(study_command(*args), cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids: dict[str, int] = {}
    victim = None
    try:
        for line in proc.stdout:
            if match := re.match(r"trial (\d+) started .* \(pid (\d+)\)", line):
                pids[match[1]] = int(match[2])
            if (match := re.match(r"trial (\d+) epoch 2/", line)) and match[1] in pids:
                victim = match[1]
                os.kill(pids[victim], signal.SIGKILL)
                break
        output, errors = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert victim is not None, "no trial reached its second epoch"
    assert proc.returncode == 1, errors[-3000:]
    assert f"ended with signal 9 during trial {victim}" in output
    assert load_optuna(tmp_path, "smoke").get_trials()[int(victim)].state == optuna.trial.TrialState.RUNNING

    again = run_study(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 1 trial(s)" in again.stdout and "1 trial(s) to run" in again.stdout
    trials = load_optuna(tmp_path, "smoke").get_trials()
    complete = [(t.params["kl"], t.params["train.seed"]) for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == len(set(complete)) == 4
    assert [t.number for t in trials if t.state.name == "FAIL"] == [int(victim)]
    assert [t.number for t in trials if t.state.name not in ("COMPLETE", "FAIL")] == []
    _, children = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "smoke")
    by_state = sorted((r.data.tags["optuna.state"], r.info.status) for r in children)
    assert by_state == [("COMPLETE", "FINISHED")] * 4 + [("FAIL", "FAILED")]
    finished = [(r.data.tags["cvae.config_key"], r.data.tags["cvae.seed"]) for r in children
                if r.info.status == "FINISHED"]
    assert len(set(finished)) == 4


@pytest.mark.parametrize("spec_text, extra, expected", [
    (None, ("--set", "optim.lrr=0.1"), "(--set): key optim.lrr: unknown key (did you mean 'optim.lr'?)"),
    ("extends: smoke.yaml\nsearch: {optim.lrate: {choices: [0.1]}}\n", (), "key search.optim.lrate: unknown"),
    (None, ("--set", "data.train=missing.txt"), "key data.train: file not found"),
])
def test_bad_input_exits_2_with_one_line_and_creates_nothing(tmp_path: Path, spec_text, extra, expected) -> None:
    spec = "smoke.yaml"
    if spec_text is not None:
        (tmp_path / "bad.yaml").write_text(spec_text)
        spec = "bad.yaml"
    before = sorted(tmp_path.iterdir())
    proc = run_study(tmp_path, spec, *extra, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and ".yaml" in lines[0], proc.stderr
    assert sorted(tmp_path.iterdir()) == before  # no mlflow.db, no mlruns/, no journal


BLOCKS_SPEC = """extends: smoke.yaml
train: {epochs: 2}
blocks:
  - name: explosion
    search:
      optim: {choices: [{name: adam, lr: 0.01}, {name: sgd, lr: 10000.0}]}
      optim.clip_norm: {choices: [null]}
  - name: collapse
    search:
      setting:
        choices:
          - {kl.schedule: constant, kl.beta_max: 1.0, kl.free_bits: 0.1, model.mu_bn: 0.5}
          - {kl.schedule: constant, kl.beta_max: 0.0}
study:
  name: blocks
  seeds: [0, 1]
  confirm: {top: 1, seeds: [7]}
"""


def test_blocks_then_confirmation_on_fresh_seeds(tmp_path) -> None:
    (tmp_path / "blocks.yaml").write_text(BLOCKS_SPEC)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_study(tmp_path, str(tmp_path / "blocks.yaml"), "--workers", "2", "--tracking-uri", uri)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, children = child_runs(uri, "blocks")
    search = [r for r in children if r.data.tags["cvae.phase"] == "search"]
    confirm = [r for r in children if r.data.tags["cvae.phase"] == "confirm"]
    assert len(search) == 8  # 2 + 2 configurations (none shared) x 2 seeds
    statuses = {r.data.tags["cvae.status"] for r in search}
    assert "diverged" in statuses  # plain SGD at lr 1e4 without clipping
    names = {r.info.run_name for r in search}
    assert any(name.startswith("lab · sgd lr10000 clip-") and name.endswith("s1") for name in names), names
    # the confirmation retrains the single top qualifying configuration on seed 7, which the search never used
    assert [r.data.tags["cvae.seed"] for r in confirm] == ["7"]
    assert confirm[0].data.tags["cvae.status"] in ("works", "weak")
    top_key = confirm[0].data.tags["cvae.config_key"]
    assert {r.data.tags["cvae.status"] for r in search if r.data.tags["cvae.config_key"] == top_key} <= {
        "works", "weak"}
    client = MlflowClient(tracking_uri=uri)
    assert client.get_experiment_by_name("blocks").tags.get("mlflow.experimentKind") == "custom_model_development"
    # rerunning resumes both phases: nothing is trained again
    again = run_study(tmp_path, str(tmp_path / "blocks.yaml"), "--workers", "2", "--tracking-uri", uri)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(child_runs(uri, "blocks")[1]) == 9


def test_a_configuration_has_one_name_in_the_winner_the_leaderboard_the_run_names_and_the_summary(smoke,
                                                                                                tmp_path) -> None:
    from studies.report.build import build_report

    assert smoke.proc.returncode == 0, smoke.proc.stderr[-3000:]
    _, children = child_runs(smoke.uri, "smoke")
    names = {run.info.run_name.rsplit(" · s", 1)[0] for run in children}  # a run's name: its configuration's + seed
    assert len(names) == 2
    text = (build_report(study="smoke", tracking_uri=smoke.uri, out=tmp_path / "report") / "report.md").read_text()
    winner = re.search(r"\*\*Winner\*\* \([^)]*\): (.+?): BLEU-4", text)
    assert winner and winner.group(1) in names
    board = [line.split(" | ")[1] for line in text.splitlines() if re.match(r"^\| (\d+|–) \| ", line)]
    assert set(board[:2]) == names  # the leaderboard's configuration column
    summary = smoke.proc.stdout[smoke.proc.stdout.index("best configurations of smoke"):]
    assert all(f" {name} " in summary for name in names)  # the closing table
