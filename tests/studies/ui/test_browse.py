"""studies.ui.browse without a browser: a bad study or store ends in one line, exit 2, with nothing started or written; the
addresses it prints; the study's saved view, written once; the port it picks; a server that dies or is stopped.
The real server in a real browser: tests/slow/test_browser.py."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient

from studies.ui import browse as ui
from studies.testing import make_trial, write_study

OVERRIDES = {"optim.name": "adam", "optim.lr": 0.003, "kl.schedule": "cyclical"}


@pytest.fixture(autouse=True)
def _signals():
    """main() installs its SIGINT / SIGTERM handlers: give pytest its own back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> SimpleNamespace:
    """A study of two trials whose parent run holds a report (its artifacts stay here)."""
    folder = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    trials = [make_trial(number=n, overrides=OVERRIDES, seed=n, status="works") for n in (0, 1)]
    ids = write_study(tracking_uri=uri, study="demo", trials=trials, artifact_location=folder / "artifacts")
    report = folder / "report.html"
    report.write_text("<h1>Study report: demo</h1>")
    MlflowClient(uri).log_artifact(ids["parent_run_id"], str(report), artifact_path="report")
    write_study(tracking_uri=uri, study="bare", trials=[make_trial(number=0, overrides=OVERRIDES, seed=0,
                                                                    status="works")])  # no report
    return SimpleNamespace(database=folder / "mlflow.db", **ids)


@pytest.fixture
def store(template, tmp_path: Path) -> SimpleNamespace:
    """A copy of the template's store, alone in its folder (each test may write its view)."""
    shutil.copy(template.database, tmp_path / "mlflow.db")
    return SimpleNamespace(folder=tmp_path, uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                           experiment_id=template.experiment_id, parent_run_id=template.parent_run_id)


class FakeServer:
    """Stands for `mlflow ui`: Ctrl-C as soon as it serves."""

    def __init__(self) -> None:
        self.process = SimpleNamespace(pid=123, wait=self._interrupt, poll=lambda: None)
        self.stopped = False

    @staticmethod
    def _interrupt() -> int:
        raise KeyboardInterrupt

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake_server(monkeypatch) -> list[dict]:
    """``ui.start_server`` records its arguments and returns a FakeServer; nothing is started."""
    started: list[dict] = []

    def start(**kwargs):
        started.append({**kwargs, "server": FakeServer()})
        return started[-1]["server"]

    monkeypatch.setattr(ui, "start_server", start)
    monkeypatch.setattr(ui, "wait_ready", lambda server, base: None)
    return started


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unknown_study_is_one_line_exit_2_and_nothing_is_started_or_written(store, fake_server, capsys):
    before = snapshot(store.folder)
    assert ui.main(["dmeo", "--tracking-uri", store.uri, "--no-browser"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("studies.ui: error: no study named 'dmeo'") and "did you mean 'demo'?" in line
    assert fake_server == [] and snapshot(store.folder) == before


def test_a_missing_store_is_one_line_exit_2_and_nothing_is_created(tmp_path, fake_server, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui.main(["demo", "--tracking-uri", uri, "--no-browser"]) == 2
    assert f"no MLflow store at {tmp_path / 'mlflow.db'}" in one_error_line(capsys)
    assert fake_server == [] and list(tmp_path.iterdir()) == []


def test_a_port_out_of_range_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        ui.main(["demo", "--port", "70000"])
    assert exit_.value.code == 2 and "--port: expected a port number 0-65535, got '70000'" in one_error_line(capsys)


def run_quietly(argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of ``ui.main(argv)``, argparse's own exits included."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = ui.main(argv)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, err.getvalue()


@settings(max_examples=40, deadline=None)
@given(text=st.one_of(st.text(max_size=12), st.integers(-10**9, 10**9).map(str)))
def test_any_port_is_a_port_number_or_one_line_exit_2(text):
    try:
        port = ui.parse_args(["demo", "--port", text]).port
    except SystemExit as exit_:
        assert exit_.code == 2
    else:
        assert 0 <= port <= 65535 and port == int(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=40).filter(lambda name: name not in ("demo", "bare")))
def test_any_unknown_study_name_is_one_line_exit_2_and_writes_nothing(template, fake_server, name):
    uri = f"sqlite:///{template.database}"
    before = hashlib.sha256(template.database.read_bytes()).hexdigest()
    code, err = run_quietly([name, "--tracking-uri", uri, "--no-browser"])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert fake_server == [] and hashlib.sha256(template.database.read_bytes()).hexdigest() == before


def test_a_port_in_use_is_one_line_exit_2_and_nothing_is_started_or_written(store, fake_server, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = snapshot(store.folder)
        assert ui.main(["demo", "--tracking-uri", store.uri, "--no-browser", "--port", str(port)]) == 2
    assert f"--port {port}: in use on 127.0.0.1" in one_error_line(capsys)
    assert fake_server == [] and snapshot(store.folder) == before


def test_it_serves_the_store_and_prints_the_runs_table_in_the_study_view_and_the_report(store, fake_server, capsys,
                                                                                         monkeypatch):
    monkeypatch.setattr(ui, "pick_port", lambda host, port: 5000)
    assert ui.main(["demo", "--tracking-uri", store.uri, "--no-browser"]) == 0
    out = capsys.readouterr().out
    base, number = "http://127.0.0.1:5000", store.experiment_id
    assert f"runs of demo: {base}/#/experiments/{number}/runs?viewStateShareKey=study-figures&" \
           "workflowType=machine_learning\n" in out
    assert f"report: {base}/#/experiments/{number}/runs/{store.parent_run_id}/artifacts/report/report.html?" \
           "workflowType=machine_learning\n" in out
    assert out.rstrip().endswith("stopped mlflow ui")
    [started] = fake_server
    assert (started["tracking_uri"], started["host"], started["port"]) == (store.uri, "127.0.0.1", 5000)
    assert started["server"].stopped


def test_the_study_view_shows_the_figures_sorted_and_is_written_once(store, fake_server, monkeypatch):
    monkeypatch.setattr(ui, "pick_port", lambda host, port: 5000)
    client = MlflowClient(store.uri)
    ui.main(["demo", "--tracking-uri", store.uri, "--no-browser"])
    tag = client.get_experiment(store.experiment_id).tags[ui.VIEW_TAG]
    envelope = json.loads(tag)
    state = json.loads(envelope["state"])
    assert envelope["name"] == "study figures"
    assert state["selectedColumns"] == ["tags.`cvae.status`", "metrics.`best/val/bleu4`",
                                        "metrics.`best/val/gaussian`", "metrics.`best/test/bleu4`",
                                        "metrics.`best/test/gaussian_unique`", "metrics.`best/test/gaussian`",
                                        "metrics.`best/heldout/bleu4`"]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`best/val/bleu4`", False)
    ui.main(["demo", "--tracking-uri", store.uri, "--no-browser"])
    assert client.get_experiment(store.experiment_id).tags[ui.VIEW_TAG] == tag  # not rewritten: the same view


def test_a_study_without_a_report_says_how_to_build_it(store, fake_server, capsys, monkeypatch):
    monkeypatch.setattr(ui, "pick_port", lambda host, port: 5000)
    assert ui.main(["bare", "--tracking-uri", store.uri, "--no-browser"]) == 0
    assert "report: none yet (python -m studies.report bare builds it)" in capsys.readouterr().out


def test_a_tracking_server_is_not_served_again_its_addresses_are_printed(store, fake_server, capsys, monkeypatch):
    monkeypatch.setattr(ui.preflight, "check_reader", lambda uri: None)
    monkeypatch.setattr(ui, "open_client", lambda tracking_uri: MlflowClient(store.uri))
    assert ui.main(["demo", "--tracking-uri", "http://user:secret@mlflow.lab:5000/", "--no-browser"]) == 0
    out = capsys.readouterr().out
    assert fake_server == [] and "secret" not in out and "user" not in out
    assert f"runs of demo: http://mlflow.lab:5000/#/experiments/{store.experiment_id}/runs?viewStateShareKey=" in out
    assert f"report: http://mlflow.lab:5000/#/experiments/{store.experiment_id}/runs/{store.parent_run_id}/" in out


def test_a_store_that_refuses_the_view_gets_the_sorted_runs_table(store, capsys, monkeypatch):
    from mlflow.exceptions import MlflowException

    def refuse(*args, **kwargs):
        raise MlflowException("permission denied")

    client = MlflowClient(store.uri)
    monkeypatch.setattr(client, "set_experiment_tag", refuse)
    study = SimpleNamespace(study="demo", experiment_id=store.experiment_id, parent_run_id=store.parent_run_id)
    runs = ui.show(client=client, study=study, base="http://127.0.0.1:5000")  # type: ignore[arg-type]
    assert runs.endswith("/runs?workflowType=machine_learning&orderByKey=metrics.%60best%2Fval%2Fbleu4%60"
                         "&orderByAsc=false")
    assert "pick the figure columns with Columns" in capsys.readouterr().out


def test_the_default_port_is_5000_or_a_free_one_when_it_is_taken(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(ui, "DEFAULT_PORT", taken.getsockname()[1])
        port = ui.pick_port("127.0.0.1", 0)
        assert port not in (0, ui.DEFAULT_PORT)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        monkeypatch.setattr(ui, "DEFAULT_PORT", free.getsockname()[1])
    assert ui.pick_port("127.0.0.1", 0) == ui.DEFAULT_PORT


def test_an_unknown_host_is_one_line():
    with pytest.raises(ui.UiError, match="--host no-such-host.invalid: not an address of this machine"):
        ui.pick_port("no-such-host.invalid", 0)


def test_a_server_that_dies_at_start_is_an_error_after_its_output(capsys):
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-c", "print('port taken'); raise SystemExit(3)"], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = ui.Server(process=process, log=log)
    with pytest.raises(ui.UiError, match="mlflow ui exited with status 3 before it answered"):
        ui.wait_ready(server, "http://127.0.0.1:9", timeout=30)
    assert "  port taken" in capsys.readouterr().err
    server.stop()


def test_stopping_the_server_ends_its_process_group():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    server = ui.Server(process=process, log=tempfile.TemporaryFile())
    server.stop()
    assert process.poll() is not None and server.log.closed


def test_addresses_of_a_local_and_of_a_remote_server():
    assert ui.local_base("0.0.0.0", 5001) == "http://127.0.0.1:5001"
    assert ui.local_base("::1", 5001) == "http://[::1]:5001"
    assert ui.server_base("https://u:p@mlflow.lab/prefix/") == "https://mlflow.lab/prefix"
    assert ui.report_address("http://h:1", "4", "abc") == (
        "http://h:1/#/experiments/4/runs/abc/artifacts/report/report.html?workflowType=machine_learning")


def test_the_view_tag_is_mlflows_envelope_and_is_kept_when_it_is_there():
    tag = ui.view_tag(None, now_ms=1)
    assert tag is not None
    envelope = json.loads(tag)
    assert (envelope["name"], envelope["createdAt"], envelope["updatedAt"]) == ("study figures", 1, 1)
    assert json.loads(envelope["state"]) == ui.view_state()
    assert ui.view_tag(tag, now_ms=2) is None
    assert ui.view_tag("not json", now_ms=2) is not None
