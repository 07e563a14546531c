"""Property-based bad input (Hypothesis): inputs generated from the schema itself, not written by hand.

Three families, each run by the commands in-process with the work they would start replaced by a stand-in that
records it was reached (``studies.run.execute`` returns 0; ``cvae.train.fit``, ``studies.report.build_report`` and
the readers' ``find_best`` raise ``Reached``), so nothing trains:

1. every config key of ``cvae.config.schema_fields()`` (and every section), at and beyond the edges its annotation
   and its Field bounds give: booleans for numbers, huge and negative integers, `.nan` and `.inf`, floats for
   integers, strings with control, zero-width and right-to-left characters, very long strings, a list or a mapping,
   null, and valid values; in a study spec (`extends: smoke.yaml`) for studies.run and in a whole experiment file
   for cvae.train, in the file or with ``--set``;
2. every path flag and path field, with long names, missing parents, files where folders belong, dangling and
   looping symbolic links, FIFOs, control characters and `~` ($HOME is a folder of the example); a path through the
   FIFO runs in a forked child with a timeout, since a FIFO opened for reading can block forever. An output path
   that passes is then used as the command would use it once its work is done (the study storage opened, the
   checkpoint saved, the report folder written): that must work, or be a one-line refusal naming the flag that
   made nothing;
3. data files (train, test, heldout) with noise: random characters, wrong field counts, words over 64 letters,
   byte-order marks, CRLF, form feeds and U+2028 inside lines, blank lines, header rows, bytes that are not UTF-8.

Every generated input either passes validation (the stand-in is reached) or gets the contract of every bad input:
exit status 2, exactly one line `PROG: error: ...` on stderr naming the file (or flag) at fault and the key or the
line, nothing on stdout, nothing created or changed in the working directory or the home folder. Where the schema
decides on its own (a value out of its field's bounds, a data line that is wrong however it is read), the input must
also be refused, and a value in its field's domain accepted; a line number is the line a text editor shows (lines
split on \\n only).

The fast tier runs a few examples of each property (seconds); `-m slow` runs the same properties with many more.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cvae import train as cvae_train
from cvae.config import ExperimentConfig, is_section, schema_fields
from cvae.configfile import set_dotted
from cvae.errors import ConfigError, UserError
from cvae.yamlfile import Refused, StrictLoader
from studies import best, run, use
from studies.report import build as report_build

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SMOKE = ROOT / "experiments" / "smoke.yaml"

FAST = {"config": 4, "data": 25, "paths": 8}
SLOW = {"config": 150, "data": 600, "paths": 200}
TIERS = [pytest.param(FAST, id="fast"), pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]
"""Examples per property: the fast tier keeps the file to seconds, the slow tier (`-m slow`) digs."""

FORK_TIMEOUT = 20.0
"""Seconds a forked command may take before it counts as hung (a valid one takes well under one)."""


def hypothesis_settings(tier: dict, family: str) -> settings:
    """Both tiers draw the same examples every run (derandomized: CI's verdict does not depend on luck); the slow
    tier draws many more. ``CVAE_FUZZ_RANDOM=1`` draws new ones each run, to dig further by hand."""
    return settings(max_examples=tier[family], derandomize=os.environ.get("CVAE_FUZZ_RANDOM") != "1", deadline=None,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example,
                                           HealthCheck.filter_too_much])


def with_examples(check: Callable[..., None], examples: list[dict[str, Any]]) -> Callable[..., None]:
    """``check`` (a Hypothesis test) also run on each of ``examples``, in both tiers, before anything is drawn."""
    for found in examples:
        check = example(**found)(check)
    return check


FOUND_VALUES: dict[str, list[tuple[str, str]]] = {
    "train.device": [('"cuda:\\u0661"', "file"), ('"cuda:2147483648"', "file")],
    "data.train": [('"~nosuchuser/x"', "file"), ('""', "file"), ('"a\\u2028b"', "file"), ('"a\u00a0"', "set")],
    "data.test": [('""', "set")],
    "name": [('"a\u202eb"', "file")],
}
"""Config values this fuzzing found mishandled (a traceback, a message naming neither file nor key), each the
smallest of its class: kept as explicit examples of both tiers."""

FOUND_PATHS: dict[str, list[str]] = {
    "studies.run spec": ["a\u2028b"],
    "studies.run --storage": ["loop", "a" * 255, "~nosuchuser/x"],
    "studies.run --storage sqlite": ["loop", "a" * 255],
    "studies.run --tracking-uri": ["loop", "~nosuchuser"],
    "studies.run --set data.train": ["~nosuchuser"],
    "studies.run data.heldout": ["~nosuchuser"],
    "cvae.train spec": ["a\u2028b"],
    "cvae.train --save": ["a" * 255, "é" * 127 + "a", "dangling/new.pt", "new.pt/../", "a\x1bb/.."],
    "cvae.train data.train": [" ", "WD/ "],
    "studies.report --out": ["dangling/dangling/", "~nosuchuser"],
    "studies.best --tracking-uri": ["~nosuchuser"],
}
"""Paths this fuzzing found mishandled, the smallest of each class (WD is the working directory)."""


# --- running a command ------------------------------------------------------------------------------------------


class Reached(Exception):
    """Raised by a stand-in: the command validated its input and was about to do its work."""


CALLS: list[dict[str, Any]] = []


def fake_execute(**kwargs: Any) -> int:
    CALLS.append({"storage": kwargs.get("storage"), "tracking_uri": kwargs.get("tracking_uri")})
    return 0


def fake_fit(*args: Any, **kwargs: Any) -> Any:
    raise Reached("cvae.train.fit")


def fake_build_report(**kwargs: Any) -> Any:
    raise Reached("studies.report.build_report")


def fake_find_best(**kwargs: Any) -> Any:
    raise Reached("find_best")


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "studies.run": run.main, "cvae.train": cvae_train.main, "studies.report": report_build.main,
    "studies.best": best.main, "studies.use": use.main}


@pytest.fixture
def stand_ins(monkeypatch) -> None:
    monkeypatch.setattr(run, "execute", fake_execute)
    monkeypatch.setattr(cvae_train, "fit", fake_fit)
    monkeypatch.setattr(report_build, "build_report", fake_build_report)
    monkeypatch.setattr(best, "find_best", fake_find_best)
    monkeypatch.setattr(use, "find_best", fake_find_best)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@dataclass
class Outcome:
    prog: str
    argv: list[str]
    code: Any = None  # exit status; None when the stand-in was reached
    out: str = ""
    err: str = ""
    reached: str | None = None  # which stand-in
    storage: str | None = None  # what studies.run would have opened
    crash: str | None = None  # the traceback of an exception that escaped the command
    hung: bool = False

    def command(self) -> str:
        """The command line to paste into bash (`$'...'` for an argument with characters a terminal would not show)."""
        shown = [shlex.quote(arg) if arg.isprintable() else
                 "$'" + arg.encode("unicode_escape").decode().replace("'", "\\'") + "'" for arg in self.argv]
        return f"python -m {self.prog} {' '.join(shown)}"

    def crash_line(self) -> str:
        return (self.crash or "").strip().splitlines()[-1] if self.crash else ""


def _call(prog: str, argv: list[str]) -> dict[str, Any]:
    """Run one command in this process: exit status, or which stand-in was reached, or the escaped exception."""
    CALLS.clear()
    try:
        code = COMMANDS[prog](list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    except Reached as exc:
        return {"reached": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a bug: reported with its traceback
        return {"crash": "".join(traceback.format_exception(exc))}
    if CALLS:
        return {"reached": "studies.run.execute", "code": code, "storage": CALLS[-1]["storage"]}
    return {"code": code}


def invoke(prog: str, argv: list[str], capsys) -> Outcome:
    capsys.readouterr()
    result = _call(prog, argv)
    captured = capsys.readouterr()
    return Outcome(prog=prog, argv=argv, out=captured.out, err=captured.err, **result)


def forked(body: Callable[[], dict[str, Any]], *, capture: Path, timeout: float = FORK_TIMEOUT) -> tuple[
        dict[str, Any], str, str, bool]:
    """``body()`` in a forked child (its stdout and stderr captured at the file descriptors), killed after
    ``timeout`` seconds: -> (its result, stdout, stderr, hung)."""
    capture.mkdir(parents=True, exist_ok=True)
    out_path, err_path, result_path = capture / "out", capture / "err", capture / "result"
    for path in (out_path, err_path, result_path):
        path.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            for fd, path in ((1, out_path), (2, err_path)):
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(handle, fd)
                os.close(handle)
            sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
            try:
                result = body()
            except BaseException as exc:  # noqa: BLE001
                result = {"crash": "".join(traceback.format_exception(exc))}
            sys.stdout.flush()
            sys.stderr.flush()
            result_path.write_text(json.dumps(result, default=str), encoding="utf-8")
        finally:
            os._exit(0)
    deadline = time.monotonic() + timeout
    hung = False
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            hung = True
            break
        time.sleep(0.005)
    read = lambda p: p.read_text(encoding="utf-8", errors="backslashreplace") if p.exists() else ""  # noqa: E731
    result = json.loads(read(result_path) or "{}") if not hung else {}
    if not hung and not result:
        result = {"crash": "the forked child died without a result"}
    return result, read(out_path), read(err_path), hung


def _guarded(body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return body()
    except Exception as exc:  # noqa: BLE001
        return {"crash": "".join(traceback.format_exception(exc))}


def invoke_forked(prog: str, argv: list[str], capture: Path) -> Outcome:
    result, out, err, hung = forked(lambda: _call(prog, argv), capture=capture)
    return Outcome(prog=prog, argv=argv, out=out, err=err, hung=hung, **result)


# --- the working directory and what is in it ---------------------------------------------------------------------


@contextmanager
def workdir(base: Path):
    """A fresh folder `root` with `root/wd` as the working directory and `root/home` as $HOME."""
    root = Path(tempfile.mkdtemp(prefix="ex-", dir=base))
    wd, home = root / "wd", root / "home"
    wd.mkdir()
    home.mkdir()
    cwd, old_home = os.getcwd(), os.environ.get("HOME")
    os.chdir(wd)
    os.environ["HOME"] = str(home)
    try:
        yield root
    finally:
        os.chdir(cwd)
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home
        shutil.rmtree(root, ignore_errors=True)


def snapshot(folder: Path) -> dict[str, str]:
    """Everything under ``folder`` without following links or opening anything but regular files: relative path ->
    content digest and mode (file), 'dir', the link's target, or the kind of a special file (a FIFO)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            info = os.lstat(path)
            rel = str(path.relative_to(folder))
            if stat.S_ISLNK(info.st_mode):
                out[rel] = "link -> " + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = "dir"
            elif stat.S_ISREG(info.st_mode):
                out[rel] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {info.st_mode:o}"
            else:
                out[rel] = f"special {stat.S_IFMT(info.st_mode):o}"
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    made = [f"made {k}" for k in after if k not in before]
    gone = [f"removed {k}" for k in before if k not in after]
    changed = [f"changed {k}" for k in before if k in after and before[k] != after[k]]
    return made + gone + changed


# --- the contract --------------------------------------------------------------------------------------------------

KEY_NAMED = re.compile(r"key ([A-Za-z_][\w.]*)")
LINE_NAMED = re.compile(r"\bline (\d+)\b")


def check_refusal(o: Outcome, *, names: tuple[str, ...], what: str) -> str:
    """The contract of a refused input (everything but what it names beyond ``names``); -> the message."""
    assert not o.hung, f"{o.command()}: hung for {FORK_TIMEOUT:.0f} s; input: {what}"
    assert o.crash is None, f"{o.command()}: crashed: {o.crash_line()}; input: {what}\n{o.crash}"
    assert o.code == 2, f"{o.command()}: exit status {o.code!r}, not 2; stderr: {o.err!r}; input: {what}"
    assert o.err.endswith("\n") and o.err.count("\n") == 1, (
        f"{o.command()}: not exactly one line on stderr: {o.err!r}; input: {what}")
    assert o.out == "", f"{o.command()}: printed on stdout: {o.out!r}; input: {what}"
    line = o.err.rstrip("\n")
    raw = [ch for ch in line if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or len(f"a{ch}b".splitlines()) > 1]
    assert not raw, (f"{o.command()}: the message holds {raw[0]!r} raw (a terminal shows a line break or a control "
                     f"sequence): {line!r}; input: {what}")
    assert re.match(rf"(python -m )?{re.escape(o.prog)}( [a-z]+)?: error: \S", line), (  # a subcommand's own prog
        f"{o.command()}: not `{o.prog}: error: ...`: {line!r}; input: {what}")
    assert not names or any(name in line for name in names), (
        f"{o.command()}: names none of {list(names)}: {line!r}; input: {what}")
    return line


def names_key(line: str, key: str) -> bool:
    """Whether ``line`` names config key ``key`` (or its section: a check across the section's keys)."""
    for named in KEY_NAMED.findall(line):
        named = named.rstrip(".")
        if named == key or key.startswith(named + ".") or (key in SECTION_KEYS and named.startswith(key + ".")):
            return True
    return f"--set '{key}=" in line or f"--set {key}=" in line


def no_changes(before: dict[str, str], root: Path, o: Outcome, what: str) -> None:
    made = changes(before, snapshot(root))
    assert not made, f"{o.command()}: refused ({o.err.strip()!r}) but changed the working folder ({what}): {made}"


# --- 1. config values at and beyond their edges ---------------------------------------------------------------------

LEAF_KEYS = [key for key, annotation in schema_fields().items() if not is_section(annotation)]
SECTION_KEYS = [key for key, annotation in schema_fields().items() if is_section(annotation)]
PATH_KEYS = ("data.train", "data.test", "data.heldout")
KNOWN_GOOD_DATA = {
    "data.train": {"data/train.txt", str(DATA / "train.txt")},
    "data.test": {"data/test.txt", str(DATA / "test.txt")},
    "data.heldout": {"data/heldout.txt", str(DATA / "heldout.txt"), str(DATA / "test.txt")},
}
"""Data paths known to hold valid files of their kind (test.txt is a valid 2-column conversion file)."""

SPECIAL_CHARS = ["\x00", "\x01", "\x07", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1b", "\x1c", "\x1f", "\x7f",
                 "\x85", "\xa0", "\u00e9", "\u200b", "\u200e", "\u202e", "\u2028", "\u2029", "\ufeff", "\U0001f600",
                 "\ud800", "\\", '"', "'", ":", "#", " ", "~", "/", "-", "."]
LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
"""What PyYAML takes for a line break (an editor only \\n)."""

REFUSED = object()
"""The YAML loader itself refuses the text."""


def field_info(key: str) -> Any:
    model: Any = ExperimentConfig
    *heads, last = key.split(".")
    for head in heads:
        model = model.model_fields[head].annotation
    return model.model_fields[last]


@dataclass(frozen=True)
class Bounds:
    ge: Any = None
    gt: Any = None
    le: Any = None
    lt: Any = None
    max_length: int | None = None
    pattern: str | None = None


def bounds(key: str) -> Bounds:
    found: dict[str, Any] = {}
    for meta in field_info(key).metadata:
        for name in ("ge", "gt", "le", "lt", "max_length", "pattern"):
            if getattr(meta, name, None) is not None:
                found[name] = getattr(meta, name)
    return Bounds(**found)


def core_type(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without None, whether None is allowed)."""
    args = get_args(annotation)
    if get_origin(annotation) is not Literal and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return annotation, False


def yaml_scalar(value: Any) -> str:
    """``value`` written as YAML (flow, one line; strings JSON-escaped)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def raw_quoted(text: str) -> str:
    """``text`` in double quotes with its characters as they are in the file (only `\\` and `"` escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_texts() -> st.SearchStrategy[str]:
    """YAML texts of strings with control, zero-width, right-to-left and line-break characters, long ones too."""
    chars = st.sampled_from(SPECIAL_CHARS) | st.characters(min_codepoint=32, max_codepoint=126)
    short = st.text(alphabet=chars, max_size=12)
    long = st.builds(lambda n, c: "a" * n + c, st.sampled_from([199, 200, 201, 999, 1000, 1001, 5000, 100_000]),
                     st.sampled_from(["", "\u200b", "\x01", "a"]))
    strings = short | long
    escaped = strings.map(json.dumps)
    raw = strings.filter(lambda s: not any("\ud800" <= c <= "\udfff" for c in s)).map(raw_quoted)
    junk_after_break = st.builds(lambda b, s: raw_quoted("a" + b + s) + " ]", st.sampled_from(LINE_BREAKS[1:]),
                                 short.filter(lambda s: not any("\ud800" <= c <= "\udfff" for c in s)))
    return escaped | raw | junk_after_break


GENERIC_BAD = ["null", "~", "", "[]", "[1, 2]", "[null]", "{}", "{a: 1}", '"1"', '"x"', "true", "false", ".nan",
               ".inf", "-.inf", "2", "-1", "0", "1.5", str(2**64), str(-(2**64)), str(10**400), "1e309", "yes", "off",
               "0x10", "1_000", '"\\u200b1"', '"\\u202e2"', "x", '"' + "a" * 1001 + '"', "[1, [2, [3]]]", "&a 1",
               "*a", "!!python/int 1", "2024-02-30", "{a: 1, a: 2}"]
"""Wrong for almost every field: null, collections, numbers as text, YAML the loader refuses."""


def value_texts(key: str) -> st.SearchStrategy[str]:
    """YAML texts for config key ``key``: its valid values, its edges and beyond, and generic wrong ones."""
    if key in SECTION_KEYS:
        return st.sampled_from(["null", "[]", "[1]", "x", "1", "true", "{}", "{nope: 1}", '""'] + GENERIC_BAD)
    core, optional = core_type(field_info(key).annotation)
    b = bounds(key)
    valid: list[st.SearchStrategy[str]] = []
    edges: list[str] = []
    if optional:
        valid.append(st.just("null"))
    if get_origin(core) is Literal:
        choices = [c for c in get_args(core)]
        valid.append(st.sampled_from(choices))
        edges += [json.dumps(v) for c in choices for v in (c.upper(), f" {c}", f"{c} ", c + "\u200b", "\u202e" + c,
                                                           c + "\n", c[:-1])]
        edges += [raw_quoted(v) for c in choices for v in (c + "\u200b", "\u202e" + c)]
    elif core is bool:
        valid.append(st.sampled_from(["true", "false", "True", "FALSE"]))
        edges += ["1", "0", '"true"', "yes", "no", "on", "y", "null", "1.0"]
    elif core is int:
        lo = b.ge if b.ge is not None else (b.gt + 1 if b.gt is not None else -(2**63))
        hi = b.le if b.le is not None else (b.lt - 1 if b.lt is not None else 2**63)
        valid.append(st.integers(lo, hi).map(str))
        valid.append(st.sampled_from([str(lo), str(hi)]))
        numbers = {lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0, -1, 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64,
                   -(2**64), 10**400}
        edges += [str(n) for n in sorted(numbers)]
        edges += [f"{lo}.0", f"{hi}.0", f"{lo + 0.5}", "1e3", "-0", "+1", "010", '"1"', ".nan", ".inf", "true",
                  "false"]
    elif core is float:
        lo = b.ge if b.ge is not None else b.gt
        hi = b.le if b.le is not None else b.lt
        floats = st.floats(min_value=lo, max_value=hi if hi is not None else 1e300, allow_nan=False,
                           allow_infinity=False, exclude_min=b.gt is not None, exclude_max=b.lt is not None)
        valid.append(floats.map(yaml_scalar))
        numbers: list[Any] = [0.0, -0.0, 5e-324, 1e-300, 1.0, -1.0, 1e308, 1.7976931348623157e308, 2**64, 10**400]
        for edge in (b.ge, b.gt, b.le, b.lt):
            if edge is not None:
                numbers += [edge, math.nextafter(edge, math.inf), math.nextafter(edge, -math.inf)]
        edges += [yaml_scalar(float(n)) if isinstance(n, float) else str(n) for n in numbers]
        edges += ["1", "0", "1e309", "-1e309", "1e-400", ".nan", ".NaN", ".inf", "-.inf", "+.inf", ".Inf",
                  '"0.1"', "NaN", "inf", "true", "1_0.5"]
    elif core is str:
        if key in PATH_KEYS:
            valid.append(st.sampled_from(sorted(KNOWN_GOOD_DATA[key])).map(json.dumps))
            edges += [json.dumps(p) for p in ("", " ", "~", "~/x", "~nosuchuser/x", "data", "data/", "/dev/null",
                                               "/dev/zero", "/proc/self/mem", "data/train.txt/", "data//train.txt",
                                               "a" * 256, "é" * 128, "/".join(["a" * 200] * 21), "a\x01b",
                                               "data/train.txt\u200b", "\u202edata/train.txt")]
        elif key == "train.device":
            valid.append(st.sampled_from(["auto", "cpu"]))
            edges += [json.dumps(v) for v in ("cuda", "cuda:0", "cuda:99", "cuda:-1", "cuda:١", "cpu\n", " cpu",
                                              "CPU", "mps", "cuda:" + "9" * 30, "cuda:" + "9" * 5000)]
        else:
            valid.append(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(json.dumps))
        edges += ['""']
        return st.one_of(*valid, st.sampled_from(edges), string_texts(), st.sampled_from(GENERIC_BAD))
    else:  # pragma: no cover - a new kind of field: teach the generator about it
        raise AssertionError(f"no value generator for {key}: {core!r}")
    return st.one_of(*valid, st.sampled_from(edges), string_texts(), st.sampled_from(GENERIC_BAD))


def loaded(text: str, *, mode: str) -> Any:
    """What the value text becomes: read as YAML in a file, or as a `--set` value (YAML, else the text itself)."""
    if mode == "set":
        if not text.strip():
            return ""
        try:
            return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader
        except Refused:
            return REFUSED
        except (yaml.YAMLError, ValueError):
            return text
    loader = None
    try:
        loader = StrictLoader(f"v: {text}\n")
        tree = loader.get_single_data()
        return tree["v"] if isinstance(tree, dict) and list(tree) == ["v"] else REFUSED
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        return REFUSED
    finally:
        if loader is not None:
            loader.dispose()


def in_domain(key: str, value: Any) -> bool:
    """Whether ``value`` is valid for field ``key`` by its annotation and bounds alone (strict types: no bool for a
    number, no float for an int, ints pass for floats; floats finite)."""
    if value is REFUSED:
        return False
    if key in SECTION_KEYS:
        return value == {}
    core, optional = core_type(field_info(key).annotation)
    if value is None:
        return optional
    b = bounds(key)
    if get_origin(core) is Literal:
        return type(value) is str and value in get_args(core)
    if core is bool:
        return type(value) is bool
    if core is str:
        if type(value) is not str or any("\ud800" <= ch <= "\udfff" for ch in value):  # a lone surrogate: no text
            return False
        if b.max_length is not None and len(value) > b.max_length:
            return False
        return b.pattern is None or re.fullmatch(b.pattern.removeprefix("^").removesuffix("$"), value) is not None
    if core is int:
        if type(value) is not int:
            return False
    elif core is float:
        if type(value) not in (int, float):
            return False
        try:
            if not math.isfinite(float(value)):
                return False
        except OverflowError:
            return False
    else:  # pragma: no cover
        raise AssertionError(core)
    return ((b.ge is None or value >= b.ge) and (b.gt is None or value > b.gt) and (b.le is None or value <= b.le)
            and (b.lt is None or value < b.lt))


def _cuda_ok(name: str) -> bool:
    import torch

    if name in ("auto", "cpu"):
        return True
    if not torch.cuda.is_available():
        return False
    index = name.partition(":")[2]
    return not index or (index.isascii() and int(index) < torch.cuda.device_count())


def expected_valid(key: str, value: Any, base_tree: dict[str, Any]) -> bool | None:
    """Whether the whole config, ``base_tree`` with ``key`` set to ``value``, must pass: the field's domain, the
    checks across fields the schema documents (cond_size < hidden_size, data files that exist and are valid, a device
    this machine has) and the memory a run may use (``cvae.resources``); None where either is right (a data path
    spelled otherwise, `data/train.txt/`, that pathlib reads as a valid file)."""
    if not in_domain(key, value):
        return False
    if key == "model.hidden_size" and not base_tree["model"].get("cond_size", 8) < value:
        return False
    if key == "model.cond_size" and not value < base_tree["model"].get("hidden_size", 256):
        return False
    if key in PATH_KEYS and value is not None and value not in KNOWN_GOOD_DATA[key]:
        spelled = {str(Path(good)) for good in KNOWN_GOOD_DATA[key]}
        return None if value.strip() and str(Path(value)) in spelled else False
    if key == "train.device" and not _cuda_ok(value):
        return False
    if key in SECTION_KEYS:
        return True
    from cvae.resources import check_resources

    tree = copy.deepcopy(base_tree)
    set_dotted(tree, key, value)
    try:
        config = ExperimentConfig.model_validate(tree)
    except Exception:  # noqa: BLE001 - the schema disagrees with the field's own domain: the command will say how
        return True
    try:
        check_resources(config, source="oracle")
    except ConfigError:
        return False
    return True


def _smoke() -> Any:
    from studies.spec import load_spec

    return load_spec(SMOKE)


SMOKE_SPEC = _smoke()
SMOKE_BASE = SMOKE_SPEC.base_tree
SEARCHED = {target for dim in SMOKE_SPEC.space for target in dim.targets()}
EXPERIMENT_DEFAULTS = ExperimentConfig().model_dump()
PLACEHOLDER = "FUZZ_VALUE_GOES_HERE"


def spec_text(key: str, text: str) -> tuple[str, int]:
    """A study spec extending smoke.yaml that sets ``key`` to the YAML ``text``, on its last line; -> (spec, the line
    of the key)."""
    head, _, last = key.rpartition(".")
    if not head:
        return f"extends: smoke.yaml\n{key}: {text}\n", 2
    return f"extends: smoke.yaml\n{head}:\n  {last}: {text}\n", 3


def experiment_text(key: str, text: str) -> tuple[str, int]:
    """A whole experiment (every key at its default) with ``key`` set to the YAML ``text``, on the file's last
    line; -> (experiment, the line of the key)."""
    tree = copy.deepcopy(EXPERIMENT_DEFAULTS)
    head, _, last = key.rpartition(".")
    if not head:
        tree.pop(key)
        tree[key] = PLACEHOLDER
    else:
        section = tree.pop(head)
        section.pop(last, None)
        section[last] = PLACEHOLDER
        tree[head] = section
    dumped = yaml.safe_dump(tree, sort_keys=False, width=10**6)
    assert dumped.count(PLACEHOLDER) == 1 and dumped.rstrip("\n").endswith(PLACEHOLDER)
    return dumped.replace(PLACEHOLDER, text), dumped.count("\n")


def check_config_outcome(o: Outcome, *, key: str, text: str, mode: str, valid: bool | None, file: str,
                         document: str, key_line: int) -> None:
    if mode == "set":
        shown = f"--set {key}={text!r}"
    elif file == "exp.yaml":
        shown = f"{file}: every key at its default, the last line {document.splitlines()[-1]!r} (line {key_line})"
    else:
        shown = f"{file} = {document!r}"
    if o.reached is not None and o.crash is None:
        assert valid is not False, (f"{o.command()}: accepted {key} = {text!r} (read as "
                                    f"{_loaded_repr(text, mode)}), outside the field's domain; {shown}")
        return
    value = loaded(text, mode=mode)
    data_file = file == "exp.yaml" and key in PATH_KEYS  # cvae.train reads it: the data file itself may be at fault
    line = check_refusal(o, names=(file, *(_shown_forms(value) if data_file and isinstance(value, str) else ())),
                         what=shown)
    assert valid is not True or "a run may use on this machine" in line, (
        f"{o.command()}: refused a valid {key} = {text!r}: {line!r}; {shown}")
    lines = [int(n) for n in LINE_NAMED.findall(line)]
    named = names_key(line, key) or (mode == "file" and lines) or (data_file and data_file_named(line, value))
    assert named, f"{o.command()}: names neither the key {key} nor a line: {line!r}; {shown}"
    if mode == "file" and lines and not names_key(line, key):
        editor_lines = document.count("\n") + (not document.endswith("\n"))
        assert all(key_line <= n <= editor_lines for n in lines), (
            f"{o.command()}: names line {lines} but {key} is on line {key_line} of {editor_lines} (lines counted "
            f"as an editor does, at \\n only): {line!r}; {shown}")


def _loaded_repr(text: str, mode: str) -> str:
    value = loaded(text, mode=mode)
    return "refused YAML" if value is REFUSED else repr(value)[:80]


def study_case(key: str, text: str, mode: str, base: Path, capsys: Any) -> None:
    """studies.run on a spec extending smoke.yaml that sets ``key`` to ``text`` (or smoke.yaml with --set)."""
    if mode == "set" and "\x00" in text:
        mode = "file"  # no NUL in a command line
    value = loaded(text, mode=mode)
    valid = expected_valid(key, value, SMOKE_BASE)
    if mode == "set" and (key in SEARCHED or any(t.startswith(key + ".") for t in SEARCHED) or key == "train.seed"):
        valid = False  # a searched key, or the seed (study.seeds decides it), is not --set in a study
    with workdir(base) as root:
        if mode == "file":
            document, key_line = spec_text(key, text)
            argv = ["spec.yaml", "--no-report"]
        else:
            document, key_line = "extends: smoke.yaml\n", 0
            argv = ["spec.yaml", "--no-report", "--set", f"{key}={text}"]
        Path("spec.yaml").write_text(document, encoding="utf-8")
        before = snapshot(root)
        o = invoke("studies.run", argv, capsys)
        check_config_outcome(o, key=key, text=text, mode=mode, valid=valid, file="spec.yaml", document=document,
                             key_line=key_line)
        if o.reached is None:
            no_changes(before, root, o, f"{key} = {text!r}")


def experiment_case(key: str, text: str, mode: str, base: Path, capsys: Any) -> None:
    """cvae.train on a whole experiment file with ``key`` set to ``text`` (or every default and --set)."""
    if mode == "set" and "\x00" in text:
        mode = "file"
    value = loaded(text, mode=mode)
    valid = expected_valid(key, value, EXPERIMENT_DEFAULTS)
    with workdir(base) as root:
        if mode == "file":
            document, key_line = experiment_text(key, text)
            argv = ["exp.yaml"]
        else:
            document, key_line = yaml.safe_dump(EXPERIMENT_DEFAULTS, sort_keys=False), 0
            argv = ["exp.yaml", "--set", f"{key}={text}"]
        Path("exp.yaml").write_text(document, encoding="utf-8")
        before = snapshot(root)
        o = invoke("cvae.train", argv, capsys)
        check_config_outcome(o, key=key, text=text, mode=mode, valid=valid, file="exp.yaml", document=document,
                             key_line=key_line)
        if o.reached is None:
            no_changes(before, root, o, f"{key} = {text!r}")


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("key", LEAF_KEYS + SECTION_KEYS)
def test_study_spec_key_at_and_beyond_its_edges(key: str, tier: dict, tmp_path: Path, capsys, stand_ins) -> None:
    """studies.run SPEC (extends smoke.yaml, sets KEY) or smoke.yaml --set KEY=VALUE: passes or the contract."""

    @hypothesis_settings(tier, "config")
    @given(text=value_texts(key), mode=st.sampled_from(["file", "set"]))
    def check(text: str, mode: str) -> None:
        study_case(key, text, mode, tmp_path, capsys)

    with_examples(check, [{"text": text, "mode": mode} for text, mode in FOUND_VALUES.get(key, ())])()


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("key", LEAF_KEYS + SECTION_KEYS)
def test_experiment_key_at_and_beyond_its_edges(key: str, tier: dict, tmp_path: Path, capsys, stand_ins) -> None:
    """cvae.train EXPERIMENT (every key written out, KEY set) or with --set KEY=VALUE: passes or the contract."""

    @hypothesis_settings(tier, "config")
    @given(text=value_texts(key), mode=st.sampled_from(["file", "set"]))
    def check(text: str, mode: str) -> None:
        experiment_case(key, text, mode, tmp_path, capsys)

    with_examples(check, [{"text": text, "mode": mode} for text, mode in FOUND_VALUES.get(key, ())])()


# --- 2. paths ------------------------------------------------------------------------------------------------------

LONG_PATH = "/".join(["a" * 200] * 21)
ATOMS = ["GOOD", "GOOD", "GOOD", "afile", "adir", "dangling", "loop", "fifo", "missing", "~", "~nosuchuser", ".",
         "..", "", "a" * 255, "a" * 256, "é" * 127 + "a", "é" * 128, "a\x01b", "a\nb", "a\tb", "a\x7fb", "a\u200bb",
         "a\u202eb", "a\u2028b", " ", "-x", LONG_PATH]
"""Path components: GOOD is the target's own valid file (or a new name, for an output)."""


@dataclass(frozen=True)
class PathTarget:
    """A path flag or field of one command: its argv (or its file) for a path P, and what a refusal names."""

    prog: str
    what: str
    good: str
    argv: Callable[[str], list[str]]
    mentions: tuple[str, ...]
    field: str | None = None  # a path written in the spec or experiment file (data.train, extends)
    file: str | None = None  # that file
    use: str | None = None  # how an accepted path is then used: storage, save, out


def _experiment_with(key: str | None, value: str | None) -> str:
    tree = copy.deepcopy(EXPERIMENT_DEFAULTS)
    tree["data"]["train"], tree["data"]["test"], tree["data"]["heldout"] = "train.txt", "test.txt", "heldout.txt"
    if key is not None:
        set_dotted(tree, key, value)
    return yaml.safe_dump(tree, sort_keys=False, width=10**6)


STUDY = ["spec.yaml", "--no-report"]
CONVERT = ["convert", "walk", "--from", "sp", "--to", "p"]
PATH_TARGETS = [
    PathTarget("studies.run", "spec", "spec.yaml", lambda p: [p, "--no-report"], ("spec",)),
    PathTarget("studies.run", "--storage", "new.journal", lambda p: [*STUDY, "--storage", p], ("--storage",),
               use="storage"),
    PathTarget("studies.run", "--storage sqlite", "new.db", lambda p: [*STUDY, "--storage", f"sqlite:///{p}"],
               ("--storage",), use="storage"),
    PathTarget("studies.run", "--tracking-uri", "mlflow.db", lambda p: [*STUDY, "--tracking-uri", f"sqlite:///{p}"],
               ("--tracking-uri",)),
    *[PathTarget("studies.run", key, good, lambda p: STUDY, ("spec.yaml",), field=key, file="spec.yaml")
      for key, good in (("data.train", "train.txt"), ("data.test", "test.txt"), ("data.heldout", "heldout.txt"),
                        ("extends", "base.yaml"))],
    *[PathTarget("studies.run", f"--set {key}", good, lambda p, k=key: [*STUDY, "--set", f"{k}={p}"],
                 ("spec.yaml",), field=key) for key, good in (("data.train", "train.txt"), ("data.test", "test.txt"))],
    PathTarget("cvae.train", "spec", "exp.yaml", lambda p: [p], ("spec",)),
    PathTarget("cvae.train", "--save", "new.pt", lambda p: ["exp.yaml", "--save", p], ("--save",), use="save"),
    *[PathTarget("cvae.train", key, good, lambda p: ["exp.yaml"], ("exp.yaml",), field=key, file="exp.yaml")
      for key, good in (("data.train", "train.txt"), ("data.test", "test.txt"), ("data.heldout", "heldout.txt"))],
    PathTarget("studies.report", "--out", "newout", lambda p: ["nostudy", "--out", p], ("--out",), use="out"),
    PathTarget("studies.report", "--tracking-uri", "mlflow.db",
               lambda p: ["nostudy", "--out", "rep", "--tracking-uri", f"sqlite:///{p}"], ("--tracking-uri",)),
    PathTarget("studies.best", "--tracking-uri", "mlflow.db", lambda p: ["nostudy", "--tracking-uri", f"sqlite:///{p}"],
               ("--tracking-uri",)),
    PathTarget("studies.use", "--checkpoint", "model.pt", lambda p: [*CONVERT, "--checkpoint", p], ("--checkpoint",)),
    PathTarget("studies.use", "--tracking-uri", "mlflow.db",
               lambda p: [*CONVERT, "--study", "nostudy", "--tracking-uri", f"sqlite:///{p}"], ("--tracking-uri",)),
]
SPEC = "extends: smoke.yaml\n"
NEEDS = {"studies.run": {"spec.yaml", "train.txt", "test.txt", "heldout.txt"},
         "cvae.train": {"exp.yaml", "train.txt", "test.txt", "heldout.txt"},
         "studies.report": {"mlflow.db"}, "studies.best": set(), "studies.use": set()}
"""What each command reads besides the path under test (the default MLflow store of the report...)."""


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    """A small, valid cvae checkpoint (untrained weights)."""
    from cvae.checkpoint import save_checkpoint
    from cvae.model import CVAE

    config = ExperimentConfig.model_validate({"model": {"hidden_size": 16, "embed_size": 8, "latent_size": 4,
                                                        "cond_size": 2}})
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    save_checkpoint(path, state_dict=CVAE(config.model).state_dict(), config=config)
    return path


def furnish(folder: Path, names: set[str], *, mlflow_db: Path, checkpoint: Path) -> None:
    """The valid files ``names`` (those a target's command reads), and the traps: a file, a folder, links, a FIFO."""
    sources = {"train.txt": DATA / "train.txt", "test.txt": DATA / "test.txt", "heldout.txt": DATA / "heldout.txt",
               "mlflow.db": mlflow_db, "model.pt": checkpoint}
    texts = {"spec.yaml": SPEC, "base.yaml": SPEC, "exp.yaml": _experiment_with(None, None)}
    for name in names:
        if name in texts:
            (folder / name).write_text(texts[name])
        elif name in sources:
            shutil.copy(sources[name], folder / name)
    (folder / "afile").write_text("x\n")
    (folder / "adir").mkdir()
    (folder / "dangling").symlink_to("nowhere")
    (folder / "loop").symlink_to("loop")
    os.mkfifo(folder / "fifo")


def path_texts(good: str) -> st.SearchStrategy[str]:
    atoms = st.sampled_from(ATOMS).map(lambda a: good if a == "GOOD" else a)
    body = st.lists(atoms, min_size=1, max_size=3).map("/".join)
    prefix = st.sampled_from(["", "", "./", WD, WD + "/", "~/", "~//"])  # never the root: WD// is inside
    suffix = st.sampled_from(["", "", "/"])
    return st.builds(lambda p, b, s: (p or ("." if b.startswith("/") else "")) + b + s, prefix, body, suffix)


def usable(target: PathTarget, o: Outcome, path: str, capture: Path, root: Path, base: Path) -> str | None:
    """For an accepted output path: do with it what the command does once its work is done (open the study storage,
    save the checkpoint, write the report); -> why that fails. A one-line user error then is a late refusal, which
    is fine only if it names the flag and made nothing. Nothing is written outside ``base``."""
    if target.use is None:
        return None
    where = (o.storage or "").removeprefix("sqlite:///") if target.use == "storage" else path
    if not os.path.abspath(os.path.expanduser(where)).startswith(str(base) + "/"):
        return None  # (path_case only draws paths under base: a safety net, never writes elsewhere)

    def body() -> dict[str, Any]:
        try:
            return use_path()
        except UserError as exc:
            return {"refused": str(exc)}

    def use_path() -> dict[str, Any]:
        if target.use == "storage":
            import optuna

            from studies.queue.storage import is_rdb, open_storage, repair_journal

            storage = o.storage or ""
            if not is_rdb(storage):
                repair_journal(Path(storage))
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            optuna.create_study(study_name="fuzz", storage=open_storage(storage), load_if_exists=True)
            return {"used": storage}
        elif target.use == "save":
            from cvae.checkpoint import save_checkpoint
            from cvae.model import CVAE

            config = ExperimentConfig.model_validate({"model": {"hidden_size": 8, "embed_size": 4, "latent_size": 2,
                                                                "cond_size": 2}})
            save_checkpoint(Path(path).expanduser(), state_dict=CVAE(config.model).state_dict(), config=config)
            return {"used": path}
        else:
            out = Path(path).expanduser()
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.html").write_text("report\n")
            (out / "explosion_trace.png").write_bytes(b"png")
        return {"used": path}

    before = snapshot(root)
    if "fifo" in path or "fifo" in (o.storage or ""):
        result, _, _, hung = forked(body, capture=capture)
    else:
        result, hung = _guarded(body), False
    if hung:
        return f"using it hangs (over {FORK_TIMEOUT:.0f} s)"
    if result.get("crash"):
        return result["crash"].strip().splitlines()[-1]
    if "refused" in result:
        made = changes(before, snapshot(root))
        if made or not any(name in result["refused"] for name in target.mentions):
            return (f"it is refused only once the work starts, {result['refused']!r}"
                    + (f", after {made}" if made else ", naming no flag"))
    return None


WD = "WD/"
"""In a generated path: the working directory's absolute path."""


def path_case(target: PathTarget, path: str, base: Path, capsys: Any, *, mlflow_db: Path, checkpoint: Path) -> None:
    """``target``'s command given ``path``: it works (and what the command then does with it works too), or the
    contract. A path through the FIFO runs in a forked child, so that a blocking read can only hang that child."""
    nest = base / "n1" / "n2"  # `../../..` from the working directory stays inside ``base``
    nest.mkdir(parents=True, exist_ok=True)
    with workdir(nest) as root:
        wd, home = root / "wd", root / "home"
        path = path.replace(WD, str(wd) + "/")
        if not _inside(path, wd, home, base):
            return  # only a path under ``base`` is written to (an accepted output path is used)
        capture = root.parent / f"{root.name}-capture"
        furnish(wd, {target.good, *NEEDS[target.prog]}, mlflow_db=mlflow_db, checkpoint=checkpoint)
        furnish(home, {target.good}, mlflow_db=mlflow_db, checkpoint=checkpoint)
        if target.file == "spec.yaml" and target.field == "extends":
            (wd / "spec.yaml").write_text(f"extends: {json.dumps(path)}\n")
        elif target.file == "spec.yaml":
            (wd / "spec.yaml").write_text(SPEC + f"data:\n  {target.field[5:]}: {json.dumps(path)}\n")
        elif target.file == "exp.yaml":
            (wd / "exp.yaml").write_text(_experiment_with(target.field, path))
        argv = target.argv(path)
        before = snapshot(root)
        try:
            o = invoke_forked(target.prog, argv, capture) if "fifo" in path else invoke(target.prog, argv, capsys)
            where = f"{target.what} = {path!r}"
            if (o.reached is not None or o.code == 0) and o.crash is None and not o.hung:
                problem = usable(target, o, path, capture, root, base)
                assert problem is None, f"{o.command()}: accepted {where}, but then: {problem}"
                return
        finally:
            shutil.rmtree(capture, ignore_errors=True)
        names = target.mentions
        if target.what == "spec" or (target.field is not None and target.prog == "cvae.train"):
            names = (*names, *_shown_forms(path))  # the data file itself is at fault
        line = check_refusal(o, names=names, what=where)
        if target.field == "extends":  # what is wrong in the extended file: that file and its line
            assert names_key(line, "extends") or LINE_NAMED.search(line) or ": spec is empty" in line, (
                f"{o.command()}: names neither the key extends nor a line: {line!r}; input: {where}")
        elif target.field is not None and target.prog == "cvae.train":
            assert names_key(line, target.field) or data_file_named(line, path), (
                f"{o.command()}: names neither the key {target.field} nor the data file {path!r} (with its line "
                f"or as a whole): {line!r}; input: {where}")
        elif target.field is not None:
            assert names_key(line, target.field), (
                f"{o.command()}: names no key {target.field}: {line!r}; input: {where}")
        no_changes(before, root, o, where)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("target", PATH_TARGETS, ids=[f"{t.prog} {t.what}" for t in PATH_TARGETS])
def test_path_flag_or_field_works_or_is_refused(target: PathTarget, tier: dict, tmp_path: Path, stand_ins, capsys,
                                                mlflow_template: Path, checkpoint_file: Path) -> None:
    """Every path flag and path field, given awkward paths (long names, missing parents, files for folders, dangling
    and looping links, a FIFO, control characters, `~`): it works, or the contract."""

    @hypothesis_settings(tier, "paths")
    @given(path=path_texts(target.good))
    def check(path: str) -> None:
        path_case(target, path, tmp_path, capsys, mlflow_db=mlflow_template, checkpoint=checkpoint_file)

    with_examples(check, [{"path": path} for path in FOUND_PATHS.get(f"{target.prog} {target.what}", ())])()


def _inside(path: str, wd: Path, home: Path, base: Path) -> bool:
    full = str(home) + path[1:] if path.startswith("~/") else path
    return os.path.abspath(os.path.join(wd, full)).startswith(str(base) + "/")


def _shown_forms(path: str) -> tuple[str, ...]:
    """How a message may show ``path``: as given, as its repr, or the start of either (a long one is shortened)."""
    forms = {path, repr(path)[1:-1]}
    if path.strip():
        forms.add(str(Path(path)))
        try:
            forms.add(str(Path(path).expanduser()))
        except RuntimeError:  # `~nosuchuser`
            pass
    return tuple({form[:24] for form in forms if form.strip()} or {"''"})


def data_file_named(line: str, path: Any) -> bool:
    """Whether ``line`` names the data file ``path`` with a line (`FILE:N:`) or as a whole (`FILE: why`)."""
    if not isinstance(path, str) or not path.strip():
        return False
    return any(re.search(re.escape(form) + r"\S*?(:\d+)?: ", line) for form in _shown_forms(path))


# --- 3. data files -------------------------------------------------------------------------------------------------

TENSE_SET = set(("sp", "tp", "pg", "p"))
HEADER_SET = TENSE_SET | {"source", "target", "src", "tgt"}
NOISE = ["\x00", "\x01", "\x07", "\x0b", "\x0c", "\x0c", "\r", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f", "\x85",
         "\xa0", "\u2028", "\u2028", "\u2029", "\u200b", "\u202e", "\ufeff", "\u3000", "é", "\U0001f600", "A", "Z",
         "0", "9", "-", "'", ".", "_", ",", "\t", " "]
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"]


def words(n: int, *, longest: int = 12) -> st.SearchStrategy[list[str]]:
    return st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=longest), min_size=n, max_size=n)


def joined(fields: list[str], seps: list[str]) -> str:
    return "".join(f + (seps[i] if i < len(fields) - 1 else "") for i, f in enumerate(fields))


@st.composite
def data_line(draw: st.DrawFn, kind: str) -> bytes:
    """One line of a train (`sp tp pg p`) or test (`src tgt src_tense tgt_tense`) file, good or noisy."""
    sep = st.sampled_from([" ", " ", "\t", "  ", " \t "])
    if kind == "train":
        good = st.builds(lambda w, s: joined(w, s), words(4), st.lists(sep, min_size=3, max_size=3))
    else:
        good = st.builds(lambda w, t, s: joined([*w, *t], s), words(2),
                         st.lists(st.sampled_from(sorted(TENSE_SET)), min_size=2, max_size=2),
                         st.lists(sep, min_size=3, max_size=3))
    shape = draw(st.sampled_from(["good", "good", "good", "crlf", "blank", "header", "count", "long", "noise", "noise",
                                  "noise", "bytes", "pad", "two"]))
    if shape == "good":
        return draw(good).encode()
    if shape == "crlf":
        return (draw(good) + "\r").encode()
    if shape == "blank":
        return draw(st.sampled_from(["", " ", "\t", "  \t", "\r"])).encode()
    if shape == "header":
        headers = ["sp tp pg p", "source target sp p", "src tgt", "sp\ttp\tpg\tp", "p p p p"]
        return draw(st.sampled_from(headers)).encode()
    if shape == "count":
        n = draw(st.sampled_from([1, 2, 3, 5, 6, 9]))
        return " ".join(draw(words(n))).encode()
    if shape == "two":
        return " ".join(draw(words(2))).encode()
    if shape == "long":
        line = draw(good).split(" ")
        line[0] = "a" * draw(st.integers(65, 80))
        return " ".join(line).encode()
    if shape == "pad":
        return (" " + draw(good) + " ").encode()
    text = draw(good)
    at = draw(st.integers(0, len(text)))
    if shape == "bytes":
        return text[:at].encode() + draw(st.sampled_from(BAD_BYTES)) + text[at:].encode()
    noise = draw(st.text(st.sampled_from(NOISE), min_size=1, max_size=3))
    return (text[:at] + noise + text[at:]).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class LineVerdicts:
    """Each editor line of a data file, read the two ways an implementation may read it: A splits its fields at any
    whitespace (Python's str.split), B at spaces and tabs only (and drops the \\r of a CRLF). A line is definitely
    good, bad or blank when it is so both ways."""

    lines: list[bytes]
    a: list[str]
    b: list[str]
    empty: bool  # no field at all, one of the two ways
    mixed: bool  # a test file with 2-column and 4-column lines, one of the two ways

    def definitely(self, i: int, verdict: str) -> bool:
        return self.a[i] == verdict and self.b[i] == verdict

    def undecodable(self, i: int) -> bool:
        try:
            self.lines[i].decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False


def _fields(raw: bytes, way: str) -> list[str] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if way == "A":
        return text.split()
    text = text.removesuffix("\r")
    return [f for f in re.split(r"[ \t]+", text) if f]


def verdicts(data: bytes, kind: str) -> LineVerdicts:
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: dict[str, list[str]] = {}
    empty = mixed = False
    for way in ("A", "B"):
        seen = 0
        widths: set[int] = set()
        result = []
        for raw in lines:
            fields = _fields(raw, way)
            if fields == []:
                result.append("blank")
                continue
            if fields is None:
                result.append("bad")
                seen += 1
                continue
            ok_words = all(re.fullmatch(r"[a-z]{1,64}", w) for w in fields[:2 if kind == "test" and len(fields) == 4
                                                                          else len(fields)])
            if seen == 0 and set(fields) <= HEADER_SET:
                ok = False
            elif kind == "train":
                ok = len(fields) == 4 and ok_words
            elif len(fields) == 4:
                ok = ok_words and set(fields[2:]) <= TENSE_SET
            elif len(fields) == 2:
                ok = ok_words and seen < 10
            else:
                ok = False
            widths.add(len(fields))
            result.append("good" if ok else "bad")
            seen += 1
        out[way] = result
        empty = empty or seen == 0
        mixed = mixed or (kind != "train" and {2, 4} <= widths)
    return LineVerdicts(lines=lines, a=out["A"], b=out["B"], empty=empty, mixed=mixed)


@st.composite
def data_file(draw: st.DrawFn, kind: str) -> bytes:
    lines = draw(st.lists(data_line(kind), min_size=0, max_size=12))
    bom = draw(st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf"]))
    end = draw(st.sampled_from([b"\n", b"\n", b"", b"\r\n"]))
    return bom + b"\n".join(lines) + (end if lines else b"")


DATA_TARGETS = [("studies.run", "data.train", "train"), ("studies.run", "data.test", "test"),
                ("studies.run", "data.heldout", "test"), ("cvae.train", "data.train", "train"),
                ("cvae.train", "data.test", "test")]


def data_case(prog: str, key: str, kind: str, data: bytes, base: Path, capsys: Any) -> None:
    """``prog`` with --set KEY=FILE, FILE holding ``data``: accepted only if no line is wrong however it is read;
    refused naming the file and the line an editor shows (lines split at \\n only), never a good or blank line."""
    name = key.removeprefix("data.") + ".txt"
    spec = "smoke.yaml" if prog == "studies.run" else "baseline.yaml"
    v = verdicts(data, kind)
    with workdir(base) as root:
        Path(name).write_bytes(data)
        argv = [spec, "--set", f"{key}={name}"] + (["--no-report"] if prog == "studies.run" else [])
        before = snapshot(root)
        o = invoke(prog, argv, capsys)
        shown = f"{name} = {data!r}"
        if o.reached is not None and o.crash is None:
            bad = [i + 1 for i in range(len(v.lines)) if v.definitely(i, "bad")]
            assert not bad, f"{o.command()}: accepted {name} whose line {bad[0]} is wrong however it is read " \
                            f"({v.lines[bad[0] - 1]!r}); {shown}"
            assert not (v.empty and all(v.definitely(i, "blank") for i in range(len(v.lines)))), (
                f"{o.command()}: accepted an empty {name}; {shown}")
            return
        line = check_refusal(o, names=(name,), what=shown)
        at = re.search(rf"{re.escape(name)}:(\d+):", line)
        if at is None:
            assert f"{name}: " in line, f"{o.command()}: names {name} with no line: {line!r}; {shown}"
            assert v.empty or v.mixed, f"{o.command()}: refuses {name} as a whole, naming no line: {line!r}; {shown}"
        else:
            n = int(at.group(1))
            assert 1 <= n <= len(v.lines), (
                f"{o.command()}: names line {n} of a file an editor shows with {len(v.lines)} lines "
                f"(split at \\n only): {line!r}; {shown}")
            i = n - 1
            assert not v.definitely(i, "good") and not v.definitely(i, "blank"), (
                f"{o.command()}: names line {n}, {v.lines[i]!r}, which is {v.a[i]} however it is read (lines "
                f"split at \\n only): {line!r}; {shown}")
            earlier = [j + 1 for j in range(i) if v.definitely(j, "bad") and not v.undecodable(i)]
            assert not earlier, (
                f"{o.command()}: names line {n}, but line {earlier[0]} ({v.lines[earlier[0] - 1]!r}) is wrong "
                f"before it (lines split at \\n only): {line!r}; {shown}")
        no_changes(before, root, o, shown)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize(("prog", "key", "kind"), DATA_TARGETS, ids=[f"{p} {k}" for p, k, _ in DATA_TARGETS])
def test_noisy_data_file_is_accepted_or_refused_at_its_editor_line(prog: str, key: str, kind: str, tier: dict,
                                                                   tmp_path: Path, capsys, stand_ins) -> None:
    """A generated train, test or heldout file with noise given with --set data.X=FILE: accepted, or refused at the
    line an editor shows."""

    @hypothesis_settings(tier, "data")
    @given(data=data_file(kind))
    def check(data: bytes) -> None:
        data_case(prog, key, kind, data, tmp_path, capsys)

    check()
