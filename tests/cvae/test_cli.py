"""cvae.cli: every command's parser errors are one line, and an output path is checked before anything runs."""

import pytest

from cvae.cli import ArgumentParser, add_set_argument, check_output, run_command
from cvae.errors import ConfigError


def test_check_output_creates_nothing(tmp_path):
    check_output(tmp_path / "new" / "deeper" / "model.pt", flag="--save")
    check_output(tmp_path / "report", flag="--out", folder=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--save .*: is a folder"):
        check_output(tmp_path, flag="--save")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "model.pt", flag="--save")
    with pytest.raises(ConfigError, match="is an existing file, not a folder"):
        check_output(tmp_path / "file", flag="--out", folder=True)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_argument_errors_are_one_line(capsys):
    parser = ArgumentParser(prog="prog")
    parser.add_argument("--workers", type=int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--workers", "abc"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("prog: error: argument --workers: invalid int value: 'abc'")


def test_set_takes_several_values_and_repeats_and_flags_are_never_abbreviated(capsys):
    parser = ArgumentParser(prog="prog")
    add_set_argument(parser)
    parser.add_argument("--tracking-uri")
    args = parser.parse_args(["--set", "optim.lr=0.1", "kl.free_bits=0.1", "--set", "train.epochs=2"])
    assert args.overrides == ["optim.lr=0.1", "kl.free_bits=0.1", "train.epochs=2"]
    assert parser.parse_args([]).overrides == []
    with pytest.raises(SystemExit):
        parser.parse_args(["--tracking", "x"])
    assert "unrecognized arguments: --tracking x" in capsys.readouterr().err


def test_check_output_refuses_an_empty_path():
    with pytest.raises(ConfigError, match="--save '': empty path; give a file path"):
        check_output("", flag="--save")


def _refuses() -> int:
    raise ConfigError("spec.yaml: key optim.lr: expected a number\nover two lines")


def test_run_command_prints_a_user_error_as_one_line_and_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("CVAE_FULL_ERROR", raising=False)
    assert run_command(_refuses, prog="cvae.train") == 2
    err = capsys.readouterr().err
    assert err == "cvae.train: error: spec.yaml: key optim.lr: expected a number over two lines\n"


def test_cvae_full_error_prints_the_whole_traceback_first(capsys, monkeypatch):
    monkeypatch.setenv("CVAE_FULL_ERROR", "1")
    assert run_command(_refuses, prog="studies.run") == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in _refuses" in err
    assert err.rstrip().endswith("studies.run: error: spec.yaml: key optim.lr: expected a number over two lines")


def test_run_command_lets_a_bug_through_with_its_traceback():
    def broken() -> int:
        raise ZeroDivisionError("a bug, not bad input")

    with pytest.raises(ZeroDivisionError):
        run_command(broken, prog="studies.run")
