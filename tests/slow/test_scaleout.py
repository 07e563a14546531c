"""Scale-out: one study run by 3 `studies.run` processes at once (3 machines, simulated) against the real
PostgreSQL on 127.0.0.1:5432 and a real `mlflow server` backed by PostgreSQL, with one of them SIGKILLed
mid-trial; and passwords kept out of everything a study prints or records.

PostgreSQL unreachable is a failure, not a skip (CI: `.ci/run` checks the port first)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from studies.tracking import WORKER_DIED
from tests.conftest import ROOT, unavailable
from tests.servers import free_port, stop, wait_healthy

pytestmark = pytest.mark.slow

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=10"
SECRET = f"pw-{uuid.uuid4().hex[:12]}"
"""A password in every URL the study is given: trust authentication ignores it; it must show up nowhere."""
EPOCHS = 8
SPEC = f"""\
# 3 configurations x 2 seeds = 6 trials of {EPOCHS} small epochs (a few seconds each)
extends: smoke.yaml
train: {{epochs: {EPOCHS}}}
search:
  kl:
    choices:
      - {{schedule: constant, beta_max: 0.0}}
      - {{schedule: constant, beta_max: 1.0, free_bits: 0.1}}
      - {{schedule: constant, beta_max: 0.5}}
study: {{seeds: [0, 1], workers: 1, heartbeat: 2}}
"""


@contextmanager
def database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (unique name), dropped at the end."""
    import psycopg

    try:
        admin = psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({' '.join(str(exc).split())})")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')




@contextmanager
def mlflow_server(*, backend: str, artifacts: Path, log: Path) -> Iterator[str]:
    """`mlflow server` on a free loopback port, backed by ``backend``, serving artifacts; -> its URL."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", backend, "--artifacts-destination", str(artifacts), "--workers", "1"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(server, url, timeout=120, output=log.read_text)
        yield url
    finally:
        stop(server)


def machine(folder: Path, name: str, *args: str) -> subprocess.Popen:
    """`python -m studies.run` as on its own machine: own working directory, TMPDIR and copy of the spec."""
    (folder / "tmp").mkdir(parents=True)
    (folder / "study.yaml").write_text(SPEC)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(folder / "tmp"), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "studies.run", "study.yaml", "--study-name", name, "--workers", "1",
               "--no-report", *args]
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        return subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=err, start_new_session=True)


def wait_for_victim(storage: optuna.storages.RDBStorage, name: str, machines: list[subprocess.Popen],
                    timeout: float = 120) -> tuple[int, subprocess.Popen]:
    """A trial RUNNING with its MLflow run and 1 to EPOCHS-3 epochs done (mid-trial), and the process running it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in machines:
            assert process.poll() is None, f"a studies.run ended early with status {process.returncode}"
        try:
            trials = storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False)
        except KeyError:  # not created yet
            trials = []
        for trial in trials:
            if (trial.state == TrialState.RUNNING and "mlflow_run_id" in trial.user_attrs
                    and 1 <= len(trial.intermediate_values) <= EPOCHS - 3):
                group = os.getpgid(int(trial.user_attrs["worker"].rsplit(":", 1)[1]))
                return trial.number, next(p for p in machines if p.pid == group)
        time.sleep(0.2)
    pytest.fail("no trial reached its first epoch in time")


@pytest.mark.postgres
def test_three_machines_one_killed_run_every_configuration_once(tmp_path: Path) -> None:
    started = time.perf_counter()
    name = f"scaleout_{uuid.uuid4().hex[:8]}"
    with database("cvae_optuna") as optuna_db, database("cvae_mlflow") as mlflow_db, \
            mlflow_server(backend=f"postgresql+psycopg://postgres@127.0.0.1:5432/{mlflow_db}",
                          artifacts=tmp_path / "artifacts", log=tmp_path / "mlflow-server.log") as server:
        server_ready = time.perf_counter() - started
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{optuna_db}"
        secret_storage = url.replace("postgres@", f"postgres:{SECRET}@")
        secret_tracking = server.replace("http://", f"http://cvae:{SECRET}@")
        folders = [tmp_path / f"machine-{i}" for i in range(3)]
        machines = [machine(folder, name, "--storage", secret_storage, "--tracking-uri", secret_tracking)
                    for folder in folders]
        storage = optuna.storages.RDBStorage(url)
        try:
            victim, killed = wait_for_victim(storage, name, machines)
            os.killpg(killed.pid, signal.SIGKILL)  # the machine dies: its studies.run and its worker process
            killed_at = time.perf_counter() - started
            killed.wait(timeout=30)
            for process in machines:
                process.wait(timeout=180)
            done_at = time.perf_counter() - started
        finally:
            for process in machines:
                stop(process)
        outputs = {folder.name: (folder / "stdout.txt").read_text() + (folder / "stderr.txt").read_text()
                   for folder in folders}
        codes = sorted(process.returncode for process in machines)
        assert codes == [-signal.SIGKILL, 0, 0], outputs

        trials = storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False)
        storage.engine.dispose()
        complete = [(t.params["kl"], t.params["train.seed"]) for t in trials if t.state == TrialState.COMPLETE]
        states = sorted(t.state.name for t in trials)
        assert len(complete) == len(set(complete)) == 6, states
        assert {seed for _, seed in complete} == {0, 1} and len({kl for kl, _ in complete}) == 3
        assert [t.number for t in trials if t.state == TrialState.FAIL] == [victim], states
        assert states == ["COMPLETE"] * 6 + ["FAIL"], "a trial was left RUNNING or WAITING"
        victim_run = trials[victim].user_attrs["mlflow_run_id"]

        client = MlflowClient(tracking_uri=server)
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        parents = [r for r in runs if r.data.tags.get("cvae.role") == "study"]
        children = [r for r in runs if r.data.tags.get("cvae.role") == "trial"]
        assert len(parents) == 1 and len(runs) == 1 + len(children)
        parent = parents[0]
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["optuna.storage"] == url.replace("postgres@", "postgres:***@")
        assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
        finished = [r for r in children if r.info.status == "FINISHED"]
        assert sorted((r.data.tags["optuna.state"], r.info.status) for r in children) == (
            [("COMPLETE", "FINISHED")] * 6 + [("FAIL", "FAILED")])
        assert len({(r.data.tags["cvae.config_key"], r.data.tags["cvae.seed"]) for r in finished}) == 6
        (failed,) = [r for r in children if r.info.status == "FAILED"]
        assert failed.info.run_id == victim_run and failed.data.tags["optuna.trial_number"] == str(victim)
        assert failed.data.tags["cvae.error"] == WORKER_DIED

        # artifacts went through the server to its destination
        assert sorted(a.path for a in client.list_artifacts(finished[0].info.run_id)) == [
            "checkpoint", "config.yaml", "samples.json"]
        assert len(list((tmp_path / "artifacts").rglob("model.pt"))) == 6
        assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["study.yaml"]

        # the password of --storage and --tracking-uri: nowhere
        recorded = [str(r.data.tags) + str(r.data.params) for r in runs]
        for where, text in [*outputs.items(), ("mlflow server log", (tmp_path / "mlflow-server.log").read_text()),
                            *(("MLflow run", r) for r in recorded)]:
            assert SECRET not in text, where
        for folder, process in zip(folders, machines):
            if process.returncode == 0:
                assert "storage postgresql+psycopg://postgres:***@127.0.0.1" in outputs[folder.name]

    seconds = time.perf_counter() - started
    counts = {state: states.count(state) for state in sorted(set(states))}
    print(f"\nscale-out: {seconds:.1f} s wall (mlflow server up at {server_ready:.1f} s, SIGKILL at "
          f"{killed_at:.1f} s, study done at {done_at:.1f} s), 3 machines, 1 SIGKILLed during trial {victim}; Optuna "
          f"trials {counts} over {len(set(complete))} distinct (configuration, seed); MLflow: 1 parent run, "
          f"{len(finished)} FINISHED + {len(children) - len(finished)} FAILED child runs")
    assert seconds < 180


@pytest.mark.postgres
def test_heartbeat_fails_only_the_dead_trial_and_enqueues_it_once(tmp_path: Path) -> None:
    """Two trials RUNNING: the one whose heartbeat stopped is failed and enqueued again (same params, once),
    its number handed to the hook; the one still beating is left alone."""
    from studies import queue
    from studies.queue.heartbeat import GRACE, stop_heartbeat
    from studies.spec import load_spec

    spec = load_spec("smoke.yaml", overrides=["study.heartbeat=1"])
    with database("cvae_beat") as db:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
        marked: list[list[int]] = []
        storage = queue.open_storage(url, heartbeat=1, on_stale=lambda failed: marked.append(failed))
        try:
            study = queue.open_study(spec=spec, storage=storage, label="test")
            queue.prepare(study=study, spec=spec)
            dead = queue.claim(spec=spec, storage=storage, lock=tmp_path / "lock")
            alive = queue.claim(spec=spec, storage=storage, lock=tmp_path / "lock")  # beats for `alive` only now
            time.sleep(GRACE + 1.5)
            with queue.study_lock(storage, spec.name, fallback=tmp_path / "lock"):
                assert [t.number for t in queue.fail_stale(study)] == [dead.number]
                assert queue.fail_stale(study) == []
            trials = study.get_trials()
            assert trials[dead.number].state == TrialState.FAIL and trials[alive.number].state == TrialState.RUNNING
            again = [t for t in trials if t.state == TrialState.WAITING and queue.trial_params(t) == dead.params]
            assert len(again) == 1 and marked == [[dead.number]]
            assert queue.prepare(study=study, spec=spec) == [] and len(study.get_trials()) == len(trials)
        finally:
            stop_heartbeat()
            storage.engine.dispose()


@pytest.mark.postgres
def test_machines_creating_one_study_at_once_make_one_queue_and_one_parent_run(tmp_path: Path) -> None:
    """3 `--create-only` at the same moment on a fresh database: one study, each (configuration, seed) enqueued
    once, one MLflow parent run; a different heartbeat later is refused."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with database("cvae_create") as db:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
        command = [sys.executable, "-m", "studies.run", "smoke.yaml", "--storage", url, "--tracking-uri", uri,
                   "--create-only"]
        runs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(3)]
        outputs = [run.communicate(timeout=150) for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], outputs
        assert all("nothing trained (--create-only)" in out for out, _ in outputs)
        storage = optuna.storages.RDBStorage(url)
        study = optuna.load_study(study_name="smoke", storage=storage)
        assert [t.state for t in study.trials] == [TrialState.WAITING] * 4
        assert len({tuple(sorted(t.system_attrs["fixed_params"].items())) for t in study.trials}) == 4
        assert study.user_attrs["cvae.heartbeat"] == 60
        storage.engine.dispose()
        client = MlflowClient(tracking_uri=uri)
        (parent,) = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
        assert parent.data.tags["cvae.role"] == "study"

        other = subprocess.run([*command, "--set", "study.heartbeat=5"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=150)
        assert other.returncode == 2 and "heartbeat of 60 s" in other.stderr, other.stderr


def test_no_password_in_errors_logs_or_tracebacks(tmp_path: Path) -> None:
    """An unreachable storage: one line, password redacted; and a process that hides secrets scrubs its log
    records and printed tracebacks, in the URL's written and decoded forms."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    unreachable = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/nothing"
    proc = subprocess.run([sys.executable, "-m", "studies.run", "smoke.yaml", "--storage", unreachable,
                           "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--no-report"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert SECRET not in proc.stdout + proc.stderr
    assert re.search(r"--storage postgresql\+psycopg://postgres:\*\*\*@127\.0\.0\.1:1/nothing: cannot (open|reach the database)",
                     proc.stderr), proc.stderr

    url = f"postgresql://user:{SECRET}%40x@host/db?password={SECRET}q"
    script = f"""
import logging, sys
from studies import secrets
secrets.hide_secrets({url!r}, "http://127.0.0.1:5000")
logging.basicConfig(stream=sys.stderr)
logging.getLogger("any").error("connecting to %s", {url!r})
try:
    raise RuntimeError("password {SECRET}@x")
except RuntimeError:
    logging.getLogger("any").exception("failed")
print("url", {url!r}, "decoded", "{SECRET}@x")
raise SystemExit(secrets.redact({url!r}))
"""
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert SECRET not in output, output
    assert "user:***@host/db?password=***" in output and "RuntimeError: password ***" in output
    assert output.count("***") >= 6


@pytest.mark.parametrize("command", [["studies.run", "smoke.yaml", "--no-report"], ["studies.best", "smoke"],
                                     ["studies.report", "smoke"]])
def test_unreachable_tracking_database_is_one_line_at_once(tmp_path: Path, command: list[str]) -> None:
    """A PostgreSQL tracking store that does not answer: exit 2 with one line, without the password, before
    anything is made (MLflow alone would retry for minutes and end in a traceback)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    unreachable = f"postgresql://postgres:{SECRET}@127.0.0.1:1/nothing"
    proc = subprocess.run([sys.executable, "-m", *command, "--tracking-uri", unreachable], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "postgres:***@127.0.0.1:1/nothing: cannot reach the MLflow database" in lines[0]
    assert SECRET not in proc.stdout + proc.stderr
    assert not any(tmp_path.iterdir())  # no journal, no mlruns, no report folder
