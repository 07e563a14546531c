"""The bad-input corpus: every `bad_inputs/NN_*.yaml` is one mistake a user makes, given to one command. Its first
line says what is wrong and, after `| expect:`, a fragment of the expected message; optional lines follow:

    # command: cvae.train             the command (default studies.run): studies.run, cvae.train, studies.best,
                                      studies.report or studies.use
    # args: --set optim.lr            its other arguments; `{case}` is this file's path, `{corpus}` the corpus folder
    # spec: 57_utf16.bin              the spec file given instead of this one (a file whose header cannot be text)
    # setup: mlflow.db=empty          files made in the empty working directory first (kinds: empty, text, sqlite
                                      (an SQLite database of other tables), mlflow (an empty MLflow store))

studies.run and cvae.train get the spec as their first argument. Every case must exit 2 with exactly one line on
stderr that names the file (or the flag at fault) and the key or line, print nothing on stdout, and leave the
working directory as it was (no file made, the setup files byte for byte the same) and the corpus untouched.

Every case runs in-process (fast); a studies.run case also runs a second time with an explicit, existing, empty
journal and MLflow database, which must stay empty; a few cases also run as real processes."""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from cvae import train as cvae_train
from studies import best, report, run, use

from .harness import ENV

pytestmark = pytest.mark.reliability

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
COMMANDS = {"studies.run": run.main, "cvae.train": cvae_train.main, "studies.best": best.main, "studies.report": report.main,
            "studies.use": use.main}
TAKES_SPEC = ("studies.run", "cvae.train")
NAMES_KEY_OR_LINE = re.compile(r"key \S+|line \d+|\.txt:\d+: |\.txt: |--set '[^']+'|--[a-z][a-z-]+|argument \w+|"
                               r"word '|: spec is empty|bytes, larger than|report folder|study named '")
AS_PROCESSES = ("01_yaml_syntax.yaml", "17_data_upper_case.yaml", "24_bad_set_syntax.yaml",
                "46_yaml_alias_bomb_train.yaml", "93_best_empty_mlflow_db.yaml")
NAMES_FLAG = re.compile(r"--[a-z][a-z-]+|argument \w+|report folder|\.txt:\d")
"""An error of the command line (or of the default of a flag) names the flag or argument instead of a file; an error
in a data file names that file and its line."""
SETUP_KINDS = ("empty", "text", "sqlite", "mlflow")


@dataclass(frozen=True)
class Case:
    path: Path
    why: str
    expect: str
    command: str = "studies.run"
    args: tuple[str, ...] = ()
    spec: Path | None = None
    setup: tuple[tuple[str, str], ...] = ()

    def argv(self) -> list[str]:
        args = [arg.replace("{case}", str(self.path)).replace("{corpus}", str(CORPUS)) for arg in self.args]
        return [str(self.spec), *args] if self.command in TAKES_SPEC else args


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("[0-9]*.yaml")):  # `_*.yaml` are helpers (the other half of a cycle...)
        head = path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")[:6]
        lines = [line.decode("utf-8", "replace") for line in head]  # some cases are binary after their header
        why, _, expect = lines[0].removeprefix("# ").partition(" | expect: ")
        options = {}
        for line in lines[1:]:
            name, sep, value = line.removeprefix("# ").partition(": ")
            if not (line.startswith("# ") and sep and name in ("command", "args", "spec", "setup")):
                break
            options[name] = value.strip()
        setup = tuple(tuple(item.split("=", 1)) for item in options.get("setup", "").split())
        cases.append(Case(path=path, why=why, expect=expect, command=options.get("command", "studies.run"),
                          args=tuple(shlex.split(options.get("args", ""))),
                          spec=CORPUS / options["spec"] if "spec" in options else path, setup=setup))
    return cases


CASES = load_cases()


def check_refusal(case: Case, code: int, err: str, out: str = "") -> None:
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one line on stderr:\n{err}"
    assert out == "", f"printed on stdout: {out}"
    line = err.strip()
    values = [f"'{arg}'" for arg in case.args if not arg.startswith("-")] if case.command not in TAKES_SPEC else []
    named = NAMES_FLAG.search(line) or any(name in line for name in (case.spec.name, case.path.name, *values))
    assert named, f"names neither the file nor the flag or argument at fault: {line}"
    assert NAMES_KEY_OR_LINE.search(line), f"names no key or line: {line}"
    assert case.expect in line, f"expected {case.expect!r} in: {line}"


def _must_not_run(*args, **kwargs) -> int:
    raise AssertionError("the input passed validation: the command would have run")


def make_setup(case: Case, folder: Path, mlflow_template: Path) -> None:
    for name, kind in case.setup:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "empty":
            path.touch()
        elif kind == "text":
            path.write_text("not a database\n")
        elif kind == "sqlite":
            with sqlite3.connect(path) as db:
                db.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
            db.close()
        else:
            shutil.copy(mlflow_template, path)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> content digest) and every folder (-> 'dir')."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def invoke(case: Case, argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = COMMANDS[case.command](argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_corpus_has_120_cases_or_more_each_with_its_expectation() -> None:
    assert len(CASES) >= 120
    assert all(case.why and case.expect for case in CASES)
    assert {case.command for case in CASES} == set(COMMANDS)
    assert all(kind in SETUP_KINDS for case in CASES for _, kind in case.setup)
    assert all(case.spec.is_file() for case in CASES)


@pytest.fixture(scope="module")
def corpus_before() -> dict[str, str]:
    return snapshot(CORPUS)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.path.stem, marks=pytest.mark.bad_input(case.path.name))
                                  for case in CASES])
def test_bad_input_is_one_line_and_exit_2_touching_nothing(case: Case, tmp_path: Path, monkeypatch, capsys,
                                                          request, corpus_before) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "execute", _must_not_run)
    monkeypatch.setattr(cvae_train, "fit", _must_not_run)
    if case.setup:
        make_setup(case, tmp_path, request.getfixturevalue("mlflow_template") if any(
            kind == "mlflow" for _, kind in case.setup) else Path())
        capsys.readouterr()  # what making the template printed (MLflow's migrations)
    before = snapshot(tmp_path)
    code, out, err = invoke(case, case.argv(), capsys)  # studies.run: default paths mlruns/optuna/, mlflow.db
    check_refusal(case, code, err, out)
    assert snapshot(tmp_path) == before
    if case.command == "studies.run":
        journal, store = tmp_path / "given.journal", tmp_path / "store"
        store.mkdir()
        database = store / "mlflow.db"
        journal.touch()
        database.touch()
        before = snapshot(tmp_path)
        argv = case.argv()  # the case's own --storage or --tracking-uri, if any, is kept (a flag is given once)
        given = {arg.split("=", 1)[0] for arg in argv}
        for flag, value in (("--storage", str(journal)), ("--tracking-uri", f"sqlite:///{database}")):
            if flag not in given:
                argv[1:1] = [flag, value]
        code, out, err = invoke(case, argv, capsys)
        check_refusal(case, code, err, out)
        assert snapshot(tmp_path) == before
    assert snapshot(CORPUS) == corpus_before


@pytest.mark.bad_input("resume_from_another_spec")
def test_refusing_to_resume_a_study_of_another_spec_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    import optuna

    from studies.contract import SPEC_DIGEST
    from studies.queue.storage import default_journal, open_storage

    monkeypatch.chdir(tmp_path)
    journal = default_journal("smoke")
    study = optuna.create_study(study_name="smoke", storage=open_storage(str(journal)))
    study.set_user_attr(SPEC_DIGEST, "another spec")
    before = snapshot(tmp_path)
    code = run.main(["smoke.yaml", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "smoke.yaml" in err and "made from a different" in err, err
    assert snapshot(tmp_path) == before  # no create-study record appended, no mlflow.db


def process_command(case: Case) -> list[str]:
    extra = ["--no-report"] if case.command == "studies.run" else []
    return [sys.executable, "-m", "cvae.train" if case.command == "cvae.train" else case.command, *case.argv(),
            *extra]


@pytest.mark.bad_input(AS_PROCESSES[0])
@pytest.mark.bad_input(AS_PROCESSES[1])
@pytest.mark.bad_input(AS_PROCESSES[2])
@pytest.mark.bad_input(AS_PROCESSES[3])
@pytest.mark.bad_input(AS_PROCESSES[4])
def test_bad_input_as_real_processes(tmp_path: Path, mlflow_template: Path) -> None:
    cases = [case for case in CASES if case.path.name in AS_PROCESSES]
    assert len(cases) == len(AS_PROCESSES)
    folders = [tmp_path / case.path.stem for case in cases]
    for case, folder in zip(cases, folders):
        folder.mkdir()
        make_setup(case, folder, mlflow_template)
    befores = [snapshot(folder) for folder in folders]

    def refuse(case: Case, folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run(process_command(case), cwd=folder, env=ENV, capture_output=True, text=True,
                              timeout=120)

    with ThreadPoolExecutor(len(cases)) as pool:
        procs = list(pool.map(refuse, cases, folders))
    for case, folder, before, proc in zip(cases, folders, befores, procs):
        check_refusal(case, proc.returncode, proc.stderr, proc.stdout)
        assert snapshot(folder) == before
