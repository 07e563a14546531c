"""What a fresh browser shows: `python -m studies.ui` serves a real smoke study, and headless Chromium with a new
profile (no MLflow state in its local storage) opens the addresses it prints: the runs table with the study's
figure columns and its child runs by their readable names, and the parent run's report. Ctrl-C stops the server."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient

from studies import contract
from tests.conftest import ROOT, unavailable
from tests.servers import free_port, stop

pytestmark = pytest.mark.slow  # a real study, a real server, a real browser: a couple of minutes

BROWSER = "chromium"
STARTUP_S = 240.0
"""Seconds studies.ui may take to print its addresses (mlflow ui starts in about 15 s on an idle machine)."""


def page(url: str, profile: Path) -> str:
    """The DOM of ``url`` after the page settled, in headless Chromium with the new profile ``profile``."""
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                           "--virtual-time-budget=30000", "--window-size=1600,1000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if shutil.which(BROWSER) is None:
        unavailable(f"{BROWSER} is not on PATH (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("browse")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    study = subprocess.run([sys.executable, "-m", "studies.run", "smoke.yaml", "--workers", "1"], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=300)
    assert study.returncode == 0, study.stderr[-3000:]
    assert "see every run: python -m studies.ui smoke\n" in study.stdout
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "studies.ui", "smoke", "--port", str(port), "--no-browser"],
                              cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(server.stdout, lines), daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + STARTUP_S
    try:
        while not any(line.startswith("report: ") for line in printed):
            assert server.poll() is None and time.monotonic() < deadline, "".join(printed)[-3000:]
            try:
                printed.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        address = {line.split(": ", 1)[0]: line.split(": ", 1)[1].strip() for line in printed if ": http" in line}
        yield SimpleNamespace(folder=folder, server=server, port=port, printed=printed, lines=lines,
                              runs=address["runs of smoke"], report=address["report"],
                              uri=f"sqlite:///{folder / 'mlflow.db'}")
    finally:
        stop(server)


def test_studies_ui_prints_the_runs_table_in_the_study_view_and_the_report(served) -> None:
    base = f"http://127.0.0.1:{served.port}/#/experiments/"
    assert served.runs.startswith(base) and served.runs.endswith(
        "/runs?viewStateShareKey=study-figures&workflowType=machine_learning")
    assert served.report.startswith(base) and served.report.endswith(
        "/artifacts/report/report.html?workflowType=machine_learning")


def test_a_fresh_browser_opens_the_runs_table_with_the_figures_and_the_child_runs_by_name(served,
                                                                                         tmp_path) -> None:
    client = MlflowClient(served.uri)
    experiment = client.get_experiment_by_name("smoke")
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=contract.ROLE_FILTER.format(role=contract.ROLE_TRIAL))
    name = children[0].info.run_name
    assert name.startswith("lab · constant β=")  # readable: its decoder, its settings, its seed
    dom = page(served.runs, tmp_path / "profile")
    assert "Run Name" in dom and name in dom  # the runs table, not the GenAI overview
    for figure in (contract.BEST_VAL_BLEU, contract.BEST_TEST_BLEU, contract.BEST_TEST_GAUSSIAN_UNIQUE):
        assert f'col-id="metrics.`{figure}`"' in dom, figure  # a figure column, with no column picked by hand
    assert f'col-id="tags.`{contract.TAG_STATUS}`"' in dom and "study figures" in dom


def test_a_fresh_browser_opens_the_parent_runs_report(served, tmp_path) -> None:
    dom = page(served.report, tmp_path / "profile")
    assert "report/report.html" in dom and 'aria-label="report"' in dom and 'aria-label="report.md"' in dom


def test_ctrl_c_stops_mlflow_ui_and_frees_the_port(served) -> None:  # last: it stops the module's server
    os.kill(served.server.pid, signal.SIGINT)
    assert served.server.wait(timeout=60) == 0
    time.sleep(0.5)  # the reader thread takes the last lines
    rest = []
    while not served.lines.empty():
        rest.append(served.lines.get())
    assert "stopped mlflow ui\n" in rest
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{served.port}/health", timeout=5)
