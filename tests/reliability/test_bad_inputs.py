"""The bad-input corpus: every `bad_inputs/NN_*.yaml` (with the data files it points to) is a malformed spec or data
file. Its first line says what is wrong and, after `| expect:`, a fragment of the expected message; an optional
`# args:` line gives extra command-line arguments. `python -m studies.run FILE` must exit 2 with exactly one line on
stderr that names the file and the key or line, and leave MLflow and the study storage untouched.

Every case runs in-process (`studies.run.main`, fast) twice: with the default storage paths in an empty working
directory, and with an explicit, existing, empty journal and MLflow database; a few also run as real processes."""

from __future__ import annotations

import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from studies import run

from .harness import ENV, study_command

pytestmark = pytest.mark.reliability

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
NAMES_KEY_OR_LINE = re.compile(r"key \S+|line \d+|\.txt:\d+: |\.txt: |--set '[^']+'")
AS_PROCESSES = ("01_yaml_syntax.yaml", "17_data_upper_case.yaml", "24_bad_set_syntax.yaml")


@dataclass(frozen=True)
class Case:
    path: Path
    why: str
    expect: str
    args: tuple[str, ...]


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("[0-9]*.yaml")):  # `_*.yaml` are helpers (the other half of a cycle)
        lines = path.read_text(encoding="utf-8").splitlines()
        why, _, expect = lines[0].removeprefix("# ").partition(" | expect: ")
        extra = lines[1] if len(lines) > 1 and lines[1].startswith("# args:") else "# args:"
        args = shlex.split(extra.removeprefix("# args:"))
        cases.append(Case(path=path, why=why, expect=expect, args=tuple(args)))
    return cases


CASES = load_cases()


def check_refusal(case: Case, code: int, err: str) -> None:
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one line on stderr:\n{err}"
    line = err.strip()
    assert case.path.name in line, f"does not name the file: {line}"
    assert NAMES_KEY_OR_LINE.search(line), f"names no key or line: {line}"
    assert case.expect in line, f"expected {case.expect!r} in: {line}"


def _must_not_run(**kwargs) -> int:
    raise AssertionError("the spec passed validation: the study would have run")


def test_the_corpus_has_25_cases_or_more_each_with_its_expectation() -> None:
    assert len(CASES) >= 25
    assert all(case.why and case.expect for case in CASES)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.path.stem, marks=pytest.mark.bad_input(case.path.name))
                                  for case in CASES])
def test_bad_input_is_one_line_and_exit_2_touching_nothing(case: Case, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "execute", _must_not_run)
    code = run.main([str(case.path), *case.args])  # default storage paths: mlruns/optuna/, mlflow.db, mlruns/
    check_refusal(case, code, capsys.readouterr().err)
    assert sorted(tmp_path.iterdir()) == []

    journal, store = tmp_path / "given.journal", tmp_path / "store"
    store.mkdir()
    database = store / "mlflow.db"
    journal.touch()
    database.touch()
    code = run.main([str(case.path), *case.args, "--storage", str(journal), "--tracking-uri", f"sqlite:///{database}"])
    check_refusal(case, code, capsys.readouterr().err)
    assert journal.stat().st_size == 0 and database.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given.journal", "store"]
    assert [p.name for p in store.iterdir()] == ["mlflow.db"]


@pytest.mark.bad_input(AS_PROCESSES[0])
@pytest.mark.bad_input(AS_PROCESSES[1])
@pytest.mark.bad_input(AS_PROCESSES[2])
def test_bad_input_as_real_processes(tmp_path: Path) -> None:
    cases = [case for case in CASES if case.path.name in AS_PROCESSES]
    assert len(cases) == len(AS_PROCESSES)
    folders = [tmp_path / case.path.stem for case in cases]
    for folder in folders:
        folder.mkdir()

    def refuse(case: Case, folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run(study_command(str(case.path), *case.args), cwd=folder, env=ENV, capture_output=True,
                              text=True, timeout=120)

    with ThreadPoolExecutor(len(cases)) as pool:
        procs = list(pool.map(refuse, cases, folders))
    for case, folder, proc in zip(cases, folders, procs):
        check_refusal(case, proc.returncode, proc.stderr)
        assert proc.stdout == ""
        assert sorted(folder.iterdir()) == []
