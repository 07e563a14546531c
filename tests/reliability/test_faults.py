"""Faults injected into real `python -m studies.run` processes (tiny studies in tmp folders, default storage
paths): diverging trials, SIGKILL of a worker and of the main process, Ctrl-C, 4 workers on one SQLite MLflow
store, an MLflow store that is unreachable or read-only, and corrupted checkpoints."""

from __future__ import annotations

import multiprocessing
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient
from optuna.trial import TrialState

from cvae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cvae.config import ExperimentConfig, ModelConfig
from cvae.model import CVAE

from .harness import (ENV, LiveStudy, finished, item, journal, lost_trials, mlflow_runs, run_study, wait_gone,
                      write_spec)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


# ---------------------------------------------------------------------------------------------------------
# Divergence: data for the report, never a crash; the study goes on


DIVERGING = """search:
  optim.lr: {choices: [0.01, 1.0e+6]}
  kl: {choices: [{beta_max: 1.0}, {schedule: constant, beta_max: 1.0e+39}]}
"""
"""2 x 2 configurations x 2 seeds, all plain SGD without clipping (``--set``): lr 0.01 trains, lr 1e6 blows up; a KL
weight of 1e39 (finite in the spec, inf once float32 multiplies it) makes the very first loss non-finite."""
HUGE_LR, SANE_LR = 1.0e6, 0.01
SANE_KL, INF_KL = "beta_max=1.0", "beta_max=1e+39,schedule=constant"  # bundle keys sorted


@pytest.fixture(scope="module")
def diverging(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("diverge")
    spec = write_spec(folder, "diverge", epochs=2, seeds=[0, 1], workers=2, extra=DIVERGING)
    proc = run_study(folder, str(spec), "--set", "optim.name=sgd", "optim.clip_norm=null")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    study = journal(folder, "diverge")
    return SimpleNamespace(folder=folder, proc=proc, trials=study.get_trials(),
                           client=MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}"))


def check_diverged(run: SimpleNamespace, *, lr: float, kl: str) -> list:
    """The trials of (lr, kl) are recorded `diverged` with step and cause, alike in Optuna and MLflow."""
    trials = [t for t in run.trials if (t.params["optim.lr"], t.params["kl"]) == (lr, kl)]
    assert len(trials) == 2  # one per seed
    for trial in trials:
        attrs = trial.user_attrs
        assert trial.state == TrialState.FAIL and attrs["status"] == "diverged", attrs
        assert isinstance(attrs["diverged_step"], int) and attrs["diverged_step"] >= 1
        assert "non-finite" in attrs["divergence_cause"]
        mlflow = run.client.get_run(attrs["mlflow_run_id"])
        tags = mlflow.data.tags
        assert mlflow.info.status == "FAILED"
        assert (tags["optuna.state"], tags["cvae.status"]) == ("FAIL", "diverged")
        assert tags["cvae.diverged_step"] == str(attrs["diverged_step"])
        assert tags["cvae.divergence_cause"] == attrs["divergence_cause"]
        assert mlflow.data.metrics["run/diverged"] == 1
        assert (mlflow.data.params["optim.name"], mlflow.data.params["optim.clip_norm"]) == ("sgd", "None")
        assert f"trial {trial.number} FAIL (diverged)" in run.proc.stdout
    # the study went on: every trial finished, and the sane configuration completed for both seeds
    assert all(t.state.is_finished() for t in run.trials) and len(run.trials) == 8
    sane = [t for t in run.trials if (t.params["optim.lr"], t.params["kl"]) == (SANE_LR, SANE_KL)]
    assert sorted(t.params["train.seed"] for t in sane if t.state == TrialState.COMPLETE) == [0, 1]
    return trials


@pytest.mark.fault("divergence: huge learning rate (SGD lr 1e6, no clipping)")
def test_huge_learning_rate_is_recorded_diverged_and_the_study_goes_on(diverging) -> None:
    check_diverged(diverging, lr=HUGE_LR, kl=SANE_KL)


@pytest.mark.fault("divergence: input that makes the loss non-finite (KL weight 1e39)")
def test_non_finite_loss_is_recorded_diverged_at_its_step(diverging) -> None:
    for trial in check_diverged(diverging, lr=SANE_LR, kl=INF_KL):
        assert trial.user_attrs["diverged_step"] == 1
        assert trial.user_attrs["divergence_cause"].startswith("non-finite loss (inf)")


# ---------------------------------------------------------------------------------------------------------
# Killed processes and Ctrl-C: finished trials are kept, the rest is run again, nothing left RUNNING


def check_resumed(folder: Path, name: str, *, before: dict, killed: list[int], ledger, run_status: str) -> None:
    """After the rerun: no finished trial lost or duplicated, every (configuration, seed) complete once, the killed
    trials failed in Optuna and their MLflow runs ended with ``run_status``, nothing left RUNNING."""
    study = journal(folder, name)
    after = finished(study)
    lost = lost_trials(before, after)
    ledger.lost(lost)
    assert lost == 0, (before, after)
    items = [entry[0] for entry in after.values()]
    assert len(items) == len(set(items)) == 4
    trials = study.get_trials()
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    parent, children = mlflow_runs(folder, name)
    assert parent.info.status == "FINISHED"
    assert [r.info.run_name for r in children if r.info.status == "RUNNING"] == []
    done = [(r.data.tags["cvae.config_key"], r.data.tags["cvae.seed"]) for r in children if r.info.status == "FINISHED"]
    assert len(done) == len(set(done)) == 4
    by_id = {r.info.run_id: r for r in children}
    for number in killed:
        trial = trials[number]
        assert trial.state == TrialState.FAIL
        if "mlflow_run_id" in trial.user_attrs:  # absent only when killed before its run was made
            run = by_id[trial.user_attrs["mlflow_run_id"]]
            assert run.info.status == run_status and run.data.tags["optuna.state"] == "FAIL"


def start_two_worker_study(tmp_path: Path, name: str, mlflow_template: Path) -> tuple[Path, LiveStudy]:
    """A 2-worker study of 4 trials of 12 epochs, long enough to be hit mid-trial, started in ``tmp_path`` on a
    copy of the prepared MLflow store: (its spec, the running study)."""
    spec = write_spec(tmp_path, name, epochs=12, seeds=[0, 1], workers=2)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    return spec, LiveStudy(tmp_path, str(spec))


@pytest.mark.fault("SIGKILL of a worker mid-trial")
def test_sigkill_of_a_worker_mid_trial_then_rerun(tmp_path: Path, ledger, mlflow_template: Path) -> None:
    spec, study = start_two_worker_study(tmp_path, "killworker", mlflow_template)
    try:
        study.expect(r"trial \d+ COMPLETE")  # a finished trial that must survive
        started = study.expect(r"trial (\d+) started \S+ worker \d+ \(pid (\d+)\)")
        victim = int(started[1])
        study.expect(rf"trial {victim} epoch 1/")
        os.kill(int(started[2]), signal.SIGKILL)
        code, out, err = study.finish()
    finally:
        study.kill_group()
    assert code == 1, err[-3000:]
    assert f"ended with signal 9 during trial {victim}" in out
    state = journal(tmp_path, "killworker")
    assert state.get_trials()[victim].state == TrialState.RUNNING
    before = finished(state)

    again = run_study(tmp_path, str(spec))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 1 trial(s)" in again.stdout
    check_resumed(tmp_path, "killworker", before=before, killed=[victim], ledger=ledger, run_status="FAILED")


@pytest.mark.fault("SIGKILL of the main process mid-trial (its workers must not live on)")
def test_sigkill_of_the_main_process_mid_trial_then_rerun(tmp_path: Path, ledger, mlflow_template: Path) -> None:
    spec, study = start_two_worker_study(tmp_path, "killmain", mlflow_template)
    try:
        started = study.wait_mid_trial()
        workers = [pid for pid in study.group() if pid != study.proc.pid]
        assert workers
        os.kill(study.proc.pid, signal.SIGKILL)  # the main process only: its workers are orphaned
        alive = wait_gone(study.proc.pid, timeout=20)
        assert alive == [], f"processes of the study still running after its main process was killed: {alive}"
        code, out, err = study.finish(timeout=30)
    finally:
        study.kill_group()
    assert code == -signal.SIGKILL
    state = journal(tmp_path, "killmain")
    killed = [t.number for t in state.get_trials() if t.state == TrialState.RUNNING]
    assert started in killed
    before = finished(state)
    assert before  # a trial had finished before the kill

    again = run_study(tmp_path, str(spec))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming: {len(killed)} trial(s)" in again.stdout
    check_resumed(tmp_path, "killmain", before=before, killed=killed, ledger=ledger, run_status="FAILED")


@pytest.mark.parametrize("how", [
    pytest.param("sigint", marks=pytest.mark.fault("SIGINT (Ctrl-C) to the main process mid-trial")),
    pytest.param("sigterm", marks=pytest.mark.fault("SIGTERM to the whole process group mid-trial"))])
def test_interrupt_closes_the_running_trials_and_says_how_to_resume(tmp_path: Path, ledger, mlflow_template: Path,
                                                                     how: str) -> None:
    _, study = start_two_worker_study(tmp_path, "interrupt", mlflow_template)
    try:
        started = study.wait_mid_trial()
        if how == "sigint":
            os.kill(study.proc.pid, signal.SIGINT)  # to the main process only, which passes it on to its workers
        else:
            os.killpg(study.proc.pid, signal.SIGTERM)  # as `kill -- -PGID` or a job scheduler stops a job
        code, out, err = study.finish(timeout=60)
    finally:
        study.kill_group()
    assert code == 130, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted:"), err[-3000:]
    assert "resume with: python -m studies.run" in lines[0]
    # consistent right away: nothing RUNNING in Optuna or MLflow, the interrupted trials failed
    state = journal(tmp_path, "interrupt")
    trials = state.get_trials()
    assert [t.number for t in trials if t.state == TrialState.RUNNING] == []
    interrupted = [t.number for t in trials if t.state == TrialState.FAIL]
    assert started in interrupted
    assert all(trials[n].user_attrs["status"] == "failed" and trials[n].user_attrs["error"] == "interrupted"
               for n in interrupted)
    parent, children = mlflow_runs(tmp_path, "interrupt")
    assert parent.info.status == "KILLED"
    assert [r.info.run_name for r in children if r.info.status == "RUNNING"] == []
    before = finished(state)
    assert before

    command = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "studies.run"]
    again = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                           timeout=150)
    assert again.returncode == 0, again.stderr[-3000:]
    check_resumed(tmp_path, "interrupt", before=before, killed=interrupted, ledger=ledger, run_status="KILLED")


@pytest.mark.parametrize("moment", [
    pytest.param(moment, marks=pytest.mark.fault(f"SIGINT to a worker {what}"))
    for moment, what in (("claim", "just as it claims a trial"), ("record", "while it records a finished trial"))])
def test_sigint_between_trainings_leaves_no_trial_half_recorded(tmp_path: Path, mlflow_template: Path,
                                                                monkeypatch, moment: str) -> None:
    """A worker in-process, Ctrl-C sent to it outside training: it must finish what it was doing, record it, and
    stop; a KeyboardInterrupt there used to leave the trial RUNNING in Optuna and MLflow."""
    from studies import tracking, worker
    from studies.spec import load_spec
    from studies.queue.storage import open_storage
    from studies.queue.trials import open_study
    from studies.queue.claim import prepare

    spec = load_spec(write_spec(tmp_path, "between", epochs=1, seeds=[0], workers=1))  # 2 trials
    journal_path = str(tmp_path / "between.journal")
    study = open_study(spec=spec, storage=open_storage(journal_path), label="test")
    prepare(study=study, spec=spec)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study_run = tracking.start_study(tracking_uri=uri, study=spec.name, objective=spec.settings.objective,
                                     spec_path=spec.path, storage=journal_path)

    def interrupting(original):
        def call(*args, **kwargs):
            if moment == "claim":
                result = original(*args, **kwargs)
                os.kill(os.getpid(), signal.SIGINT)  # the trial is claimed (RUNNING), not yet training
                return result
            os.kill(os.getpid(), signal.SIGINT)  # trained, about to be recorded
            return original(*args, **kwargs)
        return call

    if moment == "claim":
        monkeypatch.setattr(worker, "claim", interrupting(worker.claim))
    else:
        monkeypatch.setattr(tracking, "finish_trial", interrupting(tracking.finish_trial))
    receiver, sender = multiprocessing.Pipe(duplex=False)
    handler = signal.getsignal(signal.SIGINT)
    worker.main(worker.Job(spec=spec, storage=journal_path, study_run=study_run, claim_lock=tmp_path / "lock",
                           index=1), sender)

    first, second = study.get_trials()
    assert second.state == TrialState.WAITING  # the worker stopped after the interrupted trial
    run = MlflowClient(tracking_uri=uri).get_run(first.user_attrs["mlflow_run_id"])
    if moment == "claim":  # recorded as interrupted, not left RUNNING
        assert first.state == TrialState.FAIL and first.user_attrs["error"] == "interrupted"
        assert run.info.status == "KILLED"
    else:  # the finished training is kept
        assert first.state == TrialState.COMPLETE and run.info.status == "FINISHED"
    assert signal.getsignal(signal.SIGINT) is handler  # the worker gave Ctrl-C back


# ---------------------------------------------------------------------------------------------------------
# Concurrency on the default local storage


@pytest.mark.fault("4 concurrent workers on the default local storage (journal + SQLite MLflow)")
def test_four_workers_on_the_default_storage_never_hit_a_locked_database(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "four", epochs=1, seeds=[0, 1, 2, 3], workers=4)
    proc = run_study(tmp_path, str(spec), "--workers", "4", timeout=240)
    output = proc.stdout + proc.stderr
    assert "locked" not in output.lower(), output[-3000:]
    assert proc.returncode == 0, output[-3000:]
    assert "8 trial(s) to run on 4 worker(s)" in proc.stdout
    trials = journal(tmp_path, "four").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert len({item(t) for t in trials}) == 8
    parent, children = mlflow_runs(tmp_path, "four")
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.status for r in children) == ["FINISHED"] * 8


# ---------------------------------------------------------------------------------------------------------
# The MLflow store at start: unreachable or read-only -> one line, exit 2, before anything is made


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def refused_before_anything(proc: subprocess.CompletedProcess, cwd: Path, fragment: str) -> None:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "--tracking-uri" in lines[0], proc.stderr
    assert "started" not in proc.stdout  # no trial started
    assert sorted(p.name for p in cwd.iterdir()) == []  # no journal, no mlruns/, no mlflow.db


@pytest.mark.fault("MLflow tracking server unreachable at start")
def test_unreachable_tracking_server_is_refused_before_any_training(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "unreachable", epochs=1, seeds=[0], workers=1)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = run_study(cwd, str(spec), "--tracking-uri", f"http://127.0.0.1:{free_port()}", timeout=90)
    refused_before_anything(proc, cwd, "cannot reach the MLflow server")


def read_only(folder: Path) -> list[str]:
    """A command prefix under which ``folder`` is read-only even for root: a read-only bind mount of it in a
    private mount namespace (``unshare``; as a user namespace when allowed). Not root: chmod is enough."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    probe = folder / "probe"
    for flags in (["--map-root-user", "--mount"], ["--mount"]):
        prefix = ["unshare", *flags, "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
        if shutil.which("unshare") is None:
            break
        mounted = subprocess.run([*prefix, "true"], capture_output=True).returncode == 0
        if mounted and subprocess.run([*prefix, "touch", str(probe)], capture_output=True).returncode != 0 \
                and not probe.exists():  # the mount works, and refuses root's writes
            return prefix
        probe.unlink(missing_ok=True)
    pytest.fail("cannot make a read-only folder for root here: `unshare --mount` is not permitted")


@pytest.mark.parametrize("existing", [
    pytest.param(False, id="new-database", marks=pytest.mark.fault("MLflow store read-only at start (new database)")),
    pytest.param(True, id="existing-database",
                 marks=pytest.mark.fault("MLflow store read-only at start (existing database)")),
])
def test_read_only_tracking_store_is_refused_before_any_training(tmp_path: Path, existing: bool) -> None:
    spec = write_spec(tmp_path, "readonly", epochs=1, seeds=[0], workers=1)
    store, cwd = tmp_path / "store", tmp_path / "cwd"
    store.mkdir()
    cwd.mkdir()
    if existing:
        with sqlite3.connect(store / "mlflow.db") as db:  # MLflow's own tables: a store it would write to
            db.execute("CREATE TABLE experiments (id INTEGER)")
            db.execute("CREATE TABLE runs (id INTEGER)")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    proc = run_study(cwd, str(spec), "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}", timeout=90,
                     prefix=tuple(read_only(store)))
    refused_before_anything(proc, cwd, "cannot write the MLflow store")
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before


# ---------------------------------------------------------------------------------------------------------
# Corrupted checkpoints: one clear line, never a traceback or a silently wrong model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = ExperimentConfig(model=ModelConfig(hidden_size=16, latent_size=4, cond_size=4, embed_size=8))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", state_dict=CVAE(config.model).state_dict(),
                           config=config)


def flip_a_weight_byte(data: bytes, path: Path) -> bytes:
    """``data`` with one bit flipped in the middle of the largest tensor record (what bit rot does)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    header = data[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    spot = start + info.file_size // 2
    return data[:spot] + bytes([data[spot] ^ 0x10]) + data[spot + 1:]


def corrupt(kind: str, good: Path, folder: Path) -> Path:
    data = good.read_bytes()
    if kind == "truncated":
        blob = data[: len(data) * 2 // 3]
    elif kind == "bit-flip":
        blob = flip_a_weight_byte(data, good)
    elif kind == "empty":
        blob = b""
    elif kind == "not-a-checkpoint":
        blob = b"walk walks walking walked\n"
    else:  # weights of another model under this config
        other = ExperimentConfig(model=ModelConfig(hidden_size=24, latent_size=4, cond_size=4, embed_size=8))
        save_checkpoint(folder / "other.pt", state_dict=CVAE(other.model).state_dict(),
                        config=ExperimentConfig(model=ModelConfig(hidden_size=16, latent_size=4, cond_size=4,
                                                                  embed_size=8)))
        blob = (folder / "other.pt").read_bytes()
    bad = folder / f"{kind}.pt"
    bad.write_bytes(blob)
    return bad


@pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=pytest.mark.fault(f"corrupted checkpoint ({kind})"))
    for kind in ("truncated", "bit-flip", "empty", "not-a-checkpoint", "wrong-weights")])
def test_corrupted_checkpoint_is_one_clear_error(checkpoint: Path, tmp_path: Path, kind: str) -> None:
    load_checkpoint(checkpoint)  # the intact file loads
    bad = corrupt(kind, checkpoint, tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{bad}: not a readable cvae checkpoint"), message
    if kind == "bit-flip":
        assert "fails its CRC check" in message


@pytest.mark.fault("corrupted checkpoint given to `python -m studies.use convert`")
def test_studies_use_refuses_a_corrupted_checkpoint_in_one_line(checkpoint: Path, tmp_path: Path) -> None:
    bad = corrupt("bit-flip", checkpoint, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "studies.use", "convert", "walk", "--from", "sp", "--to", "p",
                           "--checkpoint", str(bad)], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "fails its CRC check" in lines[0], proc.stderr
