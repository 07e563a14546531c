"""The reliability ledger: which faults and bad inputs the suite tried, which it survived, and how many finished
trials the kill-and-rerun tests saw lost; printed as one line at the end of the run.

A test declares what it injects with ``@pytest.mark.fault(name)`` or ``pytest.mark.bad_input(case)`` (on a
parametrized case); it counts as survived or cleanly refused only if every phase of it passed. A corpus case
checked by several tests counts once, and clean only if all of them passed. Kill-and-rerun tests report the
finished trials they found lost through the ``ledger`` fixture, before asserting there are none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Ledger:
    faults: dict[str, bool] = field(default_factory=dict)  # test id -> survived so far
    inputs: dict[str, bool] = field(default_factory=dict)  # corpus case -> cleanly refused so far
    lost: int = 0

    def line(self) -> str:
        return (f"reliability: {len(self.faults)} faults injected, {sum(self.faults.values())} survived; "
                f"{len(self.inputs)} bad inputs, {sum(self.inputs.values())} clean errors; "
                f"{self.lost} finished trials lost")


LEDGER = Ledger()


class Recorder:
    """What a test tells the ledger beyond pass/fail."""

    def lost(self, count: int) -> None:
        """Finished trials that a kill and rerun lost (or changed)."""
        LEDGER.lost += count


@pytest.fixture
def ledger() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store with its schema made (MLflow's migrations take seconds): tests whose point is
    not the first run copy it to their working directory as the default `mlflow.db`, as after earlier studies."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): a reliability test that injects the fault `name`")
    config.addinivalue_line("markers", "bad_input(case): a reliability test that feeds the corpus file `case`")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    if report.skipped:  # not run (or not to the end): neither injected nor survived
        LEDGER.faults.pop(item.nodeid, None)
        return
    ok = not report.failed
    if item.get_closest_marker("fault") is not None:
        LEDGER.faults[item.nodeid] = LEDGER.faults.get(item.nodeid, True) and ok
    for mark in item.iter_markers("bad_input"):
        case = mark.args[0]
        LEDGER.inputs[case] = LEDGER.inputs.get(case, True) and ok


@pytest.hookimpl(trylast=True)  # after the other summaries (durations...): the run's last word but its stats
def pytest_terminal_summary(terminalreporter) -> None:
    if LEDGER.faults or LEDGER.inputs:
        terminalreporter.write_line(LEDGER.line())
