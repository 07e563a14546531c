"""`python -m studies.ui STUDY`: the study in MLflow's UI, on its runs table with its figures, and its report.

It checks that the study is in the store, serves a local store with `mlflow ui` (an http(s) tracking URI is a
server already: nothing is started), prints the address of the study's runs table and of its report, and serves
until Ctrl-C. Why an address, not a bare `mlflow ui`: MLflow 3.17 opens an experiment on its GenAI pages whatever
its kind (the GenAI / Model-training switch lives in the browser's local storage), unless the address asks for
model training; and its runs table shows no metric column until one is picked, which an address cannot carry (it
carries the sort and the filter only). A saved view can: the runs-table address opens the study's view
`study figures`, an experiment tag in MLflow's own saved-view format that this command writes (the same each time).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from cvae.cli import ArgumentParser, run_command
from cvae.errors import UserError
from studies import contract, preflight
from studies.report.read import StudyRuns, load_study, open_client
from studies.secrets import hide_secrets, redact
from studies.tracking import UI_URL, add_tracking_argument

VIEW_ID = "study-figures"
"""The study's saved view in the runs-table address (`viewStateShareKey=`)."""
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"
"""MLflow's own: an experiment's saved view is the experiment tag `mlflow.sharedViewState.<id>`."""
VIEW_NAME = "study figures"
"""The view's name in the runs table's Views menu."""
COLUMNS = (contract.BEST_VAL_BLEU, contract.BEST_VAL_GAUSSIAN, contract.BEST_TEST_BLEU,
           contract.BEST_TEST_GAUSSIAN_UNIQUE, contract.BEST_TEST_GAUSSIAN, contract.BEST_HELDOUT_BLEU)
"""The metric columns of the view, in this order: the chosen checkpoint's checkpoint-choice figures, then its
reported test figures, then its heldout BLEU-4 (verbs never seen in training)."""
TAG_COLUMNS = (contract.TAG_STATUS,)
"""The tag columns of the view, before the metrics."""
SORT = contract.BEST_VAL_BLEU
"""The view's sort, highest first (the table sorts on one column; the report ranks on the objective)."""
RUN_NAME_COLUMN, RUN_NAME_WIDTH = "attributes.`Run Name`", 320
"""The runs table's name column, widened so that a run's readable name shows whole."""
MODEL_TRAINING = "workflowType=machine_learning"
"""The query that opens MLflow 3's model-training pages (its runs table), not the GenAI ones."""
REPORT = "report/report.html"
"""The parent run's self-contained report (``studies.report``): its figures load on any port."""
DEFAULT_PORT = int(UI_URL.rsplit(":", 1)[1])
"""The port a bare `mlflow ui` takes; report.md's figures are addressed there (``tracking.UI_URL``)."""
STARTUP_S = 180.0
"""Seconds `mlflow ui` may take to answer (its workers start in seconds, more on a busy machine)."""
STOP_S = 15.0
"""Seconds between SIGTERM and SIGKILL when the server is stopped."""
LOG_LINES = 20
"""Lines of the server's log shown when it dies."""
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Asks the local server directly, whatever proxy the environment names."""


class UiError(UserError):
    """A one-line, user-facing error of this command."""


def column(kind: str, key: str) -> str:
    """The runs table's id of a column: `metrics.`best/val/bleu4``, `tags.`cvae.status``."""
    return f"{kind}.`{key}`"


def view_state() -> dict[str, Any]:
    """The state of the study's view: the figure and status columns, the name column wide, the sort."""
    # the status first: a browser draws only the columns that fit its window (the table scrolls sideways)
    columns = [column("tags", key) for key in TAG_COLUMNS] + [column("metrics", key) for key in COLUMNS]
    return {"selectedColumns": columns, "columnOrder": [RUN_NAME_COLUMN, *columns],
            "columnWidths": {RUN_NAME_COLUMN: RUN_NAME_WIDTH}, "orderByKey": column("metrics", SORT),
            "orderByAsc": False}


def view_tag(current: str | None, *, now_ms: int) -> str | None:
    """The experiment tag of the study's view (MLflow's envelope: name, times, the state as JSON text); None when
    ``current`` already holds this view."""
    state = json.dumps(view_state())
    try:
        held = json.loads(current) if current else None
    except ValueError:
        held = None
    if isinstance(held, dict) and held.get("name") == VIEW_NAME and held.get("state") == state:
        return None
    return json.dumps({"name": VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": state})


def save_view(client: MlflowClient, experiment_id: str) -> bool:
    """Write the study's view unless the experiment holds it already; False when the store refuses it (a server
    that lets this user read only)."""
    value = view_tag(client.get_experiment(experiment_id).tags.get(VIEW_TAG), now_ms=int(time.time() * 1000))
    if value is None:
        return True
    try:
        client.set_experiment_tag(experiment_id, VIEW_TAG, value)
    except MlflowException:
        return False
    return True


def runs_address(base: str, experiment_id: str, *, view: bool = True) -> str:
    """The study's runs table: in its saved view, or (``view=False``) sorted on ``SORT`` with MLflow's own
    columns."""
    query = (f"viewStateShareKey={VIEW_ID}&{MODEL_TRAINING}" if view else
             f"{MODEL_TRAINING}&orderByKey={quote(column('metrics', SORT), safe='')}&orderByAsc=false")
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def report_address(base: str, experiment_id: str, run_id: str) -> str:
    """The parent run's report in its Artifacts tab."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{REPORT}?{MODEL_TRAINING}"


def server_base(tracking_uri: str) -> str:
    """The address of an http(s) tracking server, without its `user:password@` (a browser asks for them)."""
    parts = urlsplit(tracking_uri)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path.rstrip("/"), "", ""))


def local_base(host: str, port: int) -> str:
    """The address of the local server (`0.0.0.0` and `::` listen everywhere, this machine included)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _free(host: str, port: int) -> bool:
    """Whether a server can listen on (host, port); UiError for a host this machine cannot listen on."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UiError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise UiError(f"--host {host}: cannot listen there ({exc.strerror or type(exc).__name__})") from None
    return True


def pick_port(host: str, port: int) -> int:
    """``port`` if it is free (UiError if not); for 0, ``DEFAULT_PORT`` or, when it is taken, a free port."""
    if port:
        if not _free(host, port):
            raise UiError(f"--port {port}: in use on {host}; give another, or --port 0 for a free one")
        return port
    if _free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    family, kind, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as sock:
        sock.bind(address)
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A `mlflow ui` child process in its own session (so Ctrl-C reaches this command, which stops it), its
    output in an unnamed temporary file."""

    process: subprocess.Popen
    log: IO[bytes]

    def tail(self) -> str:
        """The last ``LOG_LINES`` lines of its output."""
        self.log.flush()
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(0, self.log.tell() - 8000))
        lines = self.log.read().decode(errors="replace").splitlines()[-LOG_LINES:]
        return "\n".join(f"  {line}" for line in lines) or "  (no output)"

    def stop(self) -> None:
        """SIGTERM to its process group (the server's workers too), SIGKILL if it is still there later."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""Without MLflow's GenAI job runner (7 more processes, a folder in /dev/shm left behind, periodic tasks on the
store): browsing runs needs none of it."""


def start_server(*, tracking_uri: str, host: str, port: int) -> Server:
    """`mlflow ui` on (host, port) with one worker for the store (handed over in MLFLOW_BACKEND_STORE_URI, so that
    a password never shows in the process list), run from this folder as a bare `mlflow ui` would be."""
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port),
                                "--workers", "1"],
                               env={**os.environ, **SERVER_ENV, "MLFLOW_BACKEND_STORE_URI": tracking_uri},
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(process=process, log=log)


def wait_ready(server: Server, base: str, *, timeout: float = STARTUP_S) -> None:
    """Until the server answers `/health`; UiError, after its log on stderr, if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while True:
        code = server.process.poll()
        if code is not None:
            print(f"mlflow ui (pid {server.process.pid}) ended; its output:\n{server.tail()}", file=sys.stderr)
            raise UiError(f"mlflow ui exited with status {code} before it answered at {base} (its output is above)")
        try:
            with NO_PROXY.open(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            print(f"mlflow ui (pid {server.process.pid}) output so far:\n{server.tail()}", file=sys.stderr)
            raise UiError(f"mlflow ui did not answer at {base} within {timeout:.0f} s (its output is above)")
        time.sleep(0.5)


def show(*, client: MlflowClient, study: StudyRuns, base: str) -> str:
    """Save the study's view, print the addresses of its runs table and report; -> the runs-table address."""
    saved = save_view(client, study.experiment_id)
    runs = runs_address(base, study.experiment_id, view=saved)
    print(f"runs of {study.study}: {runs}" + ("" if saved else
          f"\n  (sorted on {SORT}; the store refused the saved view {VIEW_NAME!r}: pick the figure columns with "
          "Columns)"), flush=True)
    parent = study.parent_run_id
    try:
        reports = [item.path for item in client.list_artifacts(parent, "report")] if parent else []
    except (MlflowException, OSError):  # artifacts this user cannot list: said as for a missing report
        reports = []
    if parent and REPORT in reports:
        print(f"report: {report_address(base, study.experiment_id, parent)}", flush=True)
    else:
        print(f"report: none yet (python -m studies.report {study.study} builds it)", flush=True)
    return runs


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m studies.ui", description=__doc__.splitlines()[0])
    parser.add_argument("study", help="study name (the MLflow experiment)")
    add_tracking_argument(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="where the local server listens (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=_port, default=0, metavar="N",
                        help=f"port of the local server (default 0: {DEFAULT_PORT}, or a free one when it is taken)")
    parser.add_argument("--no-browser", action="store_true", help="print the addresses; open no browser")
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> int:
    """Check the study, start the server (a local store), print the addresses, serve until Ctrl-C."""
    uri = args.tracking_uri
    preflight.check_reader(uri)
    client = open_client(tracking_uri=uri)
    study = load_study(client=client, study=args.study)  # no such study: one line, nothing started or written
    if uri.startswith(("http://", "https://")):
        runs = show(client=client, study=study, base=server_base(uri))
        if not args.no_browser:
            _open(runs)
        return 0
    port = pick_port(args.host, args.port)
    base = local_base(args.host, port)
    if args.port == 0 and port != DEFAULT_PORT:
        print(f"port {DEFAULT_PORT} is taken: serving on port {port}", flush=True)
    server = start_server(tracking_uri=uri, host=args.host, port=port)
    try:
        print(f"serving {redact(uri)} with mlflow ui at {base} (pid {server.process.pid}); Ctrl-C stops it",
              flush=True)
        wait_ready(server, base)
        runs = show(client=client, study=study, base=base)
        if not args.no_browser:
            _open(runs)
        try:
            code = server.process.wait()
        except KeyboardInterrupt:
            print("stopped mlflow ui", flush=True)
            return 0
        print(f"mlflow ui ended with status {code}; its output:\n{server.tail()}", file=sys.stderr)
        return 1
    finally:
        server.stop()


def _open(address: str) -> None:
    import webbrowser

    webbrowser.open(address)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops the server as Ctrl-C does
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminated)
    hide_secrets(args.tracking_uri)
    try:
        return run_command(lambda: serve(args), prog="studies.ui")
    except KeyboardInterrupt:  # before the server answered: it is stopped already
        return 130


if __name__ == "__main__":
    sys.exit(main())
