"""Running real studies for the fault tests: tiny specs, `python -m studies.run` as a process group whose output is
read line by line, and what Optuna and MLflow hold afterwards."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
TINY = """\
extends: baseline.yaml
data: {{max_verbs: 40, heldout: null}}
model: {{hidden_size: 32, embed_size: 16, latent_size: 8, cond_size: 4}}
optim: {{lr: 0.01}}
train: {{epochs: {epochs}, batch_size: 32, gaussian_samples: 20}}
"""
"""A smoke-sized experiment (40 verbs, hidden 32): a fraction of a second an epoch."""
KL_SEARCH = "search:\n  kl: {choices: [{beta_max: 0.0}, {beta_max: 1.0}]}\n"


def write_spec(folder: Path, name: str, *, epochs: int, seeds: list[int], workers: int, extra: str = KL_SEARCH) -> Path:
    """A tiny study spec `folder/name.yaml` (study name = name)."""
    path = folder / f"{name}.yaml"
    settings = f"study: {{name: {name}, seeds: {seeds}, workers: {workers}, confirm: {{top: 0}}}}\n"
    path.write_text(TINY.format(epochs=epochs) + extra + settings)
    return path


def study_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "studies.run", *args, "--no-report"]


def run_study(cwd: Path, *args: str, timeout: float = 150, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *study_command(*args)], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


class LiveStudy:
    """`python -m studies.run` in its own process group, its stdout lines readable as they come."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(study_command(*args), cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._err: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self._queue.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self._err.append), daemon=True).start()
        self._closed = False

    @staticmethod
    def _read(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def expect(self, pattern: str, *, timeout: float = 90) -> re.Match:
        """Read stdout until a line matches ``pattern``; AssertionError on timeout or end of output."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0 and not self._closed, f"no line matching {pattern!r}:\n" + "\n".join(self.lines[-30:])
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._closed = True
                continue
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match

    def wait_mid_trial(self) -> int:
        """Once a trial has finished, wait for the next one to train its first epoch; -> that trial's number."""
        self.expect(r"trial \d+ COMPLETE")
        started = self.expect(r"trial (\d+) started")
        self.expect(rf"trial {started[1]} epoch 1/")
        return int(started[1])

    def finish(self, *, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for the exit; -> (status, stdout, stderr)."""
        code = self.proc.wait(timeout=timeout)
        while not self._closed:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("stdout still open after the main process exited (an orphan holds it)")
            if line is None:
                self._closed = True
            else:
                self.lines.append(line)
        deadline = time.monotonic() + 10
        while (not self._err or self._err[-1] is not None) and time.monotonic() < deadline:
            time.sleep(0.05)
        return code, "\n".join(self.lines), "\n".join(line for line in self._err if line is not None)

    def group(self) -> list[int]:
        """Live (not zombie) processes of the study's process group: the main process and its workers."""
        return group_pids(self.proc.pid)

    def kill_group(self) -> None:
        """Cleanup: SIGKILL whatever is left of the study's process group."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def wait_gone(pgid: int, *, timeout: float) -> list[int]:
    """Wait until no process of the group is alive; -> those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while (alive := group_pids(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def journal(cwd: Path, name: str) -> optuna.Study:
    """The study in its default storage, mlruns/optuna/NAME.journal under ``cwd``."""
    backend = optuna.storages.journal.JournalFileBackend(str(cwd / "mlruns" / "optuna" / f"{name}.journal"))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


def item(trial: optuna.trial.FrozenTrial) -> tuple:
    """(configuration, seed) of a trial: what must be finished exactly once."""
    return tuple(sorted(trial.params.items()))


def finished(study: optuna.Study) -> dict[int, tuple]:
    """COMPLETE trials: number -> ((configuration, seed), values)."""
    return {t.number: (item(t), tuple(t.values)) for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE}


def lost_trials(before: dict[int, tuple], after: dict[int, tuple]) -> int:
    """Trials finished before a fault that are no longer finished with the same item and values after it."""
    return sum(after.get(number) != entry for number, entry in before.items())


def mlflow_runs(cwd: Path, name: str) -> tuple[object, list]:
    """(parent run, child runs) of study ``name`` in the default store, mlflow.db under ``cwd``."""
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("cvae.role") == "study"]
    return parent, [r for r in runs if r.data.tags.get("cvae.role") == "trial"]
