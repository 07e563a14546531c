"""Command-line helpers shared by every command: the one runner (how a command ends on an error), the argument
parser, ``--set``, ``--tracking-uri``, output checks."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from cvae.errors import ConfigError, UserError, one_line
from cvae.paths import side_file_problem, user_path

FULL_ERROR = "CVAE_FULL_ERROR"
"""Environment variable: `1` prints the full traceback of any error a command meets, a user error too."""


def run_command(body: Callable[[], int], *, prog: str) -> int:
    """Run a command's ``body`` and return its exit status. A user error (``cvae.errors.UserError``, raised anywhere
    below) ends it the one way every command ends on bad input: ONE line on stderr, `PROG: error: MESSAGE`, and
    exit status 2 (argparse's own errors look the same: ``ArgumentParser``). With ``CVAE_FULL_ERROR=1`` the full
    traceback is printed first. Any other exception is a bug and propagates with its traceback."""
    try:
        return body()
    except UserError as exc:
        if os.environ.get(FULL_ERROR) == "1":
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with every argument error as ONE line on stderr, `PROG: error: MESSAGE (see --help)`,
    and exit status 2, like every other bad input (argparse prints its usage block first); subcommands inherit it.
    Flags must be given whole: `--tracking` is not taken for `--tracking-uri`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """argparse's, refusing a flag given twice (argparse keeps the last silently): say it once."""
        given = list(sys.argv[1:] if args is None else args)
        repeatable = (argparse._AppendAction, argparse._ExtendAction, argparse._CountAction, argparse._HelpAction)
        single = {option for action in _actions(self) if not isinstance(action, repeatable)
                  for option in action.option_strings}
        seen: set[str] = set()
        for arg in given:
            if arg == "--":
                break
            flag = arg.split("=", 1)[0]
            if flag in single:
                if flag in seen:
                    self.error(f"{flag} is given twice; give it once")
                seen.add(flag)
        return super().parse_known_args(given, namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every action of ``parser`` and of its subcommands' parsers."""
    found = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                found += _actions(sub)
    return found


def add_set_argument(parser: argparse.ArgumentParser, *, example: str = "optim.lr=0.01") -> None:
    """The one `--set KEY=VALUE [KEY=VALUE ...]` option (repeatable) of every command that reads a spec."""
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help=f"override any key of the spec, e.g. --set {example} "
                             "(repeatable; several after one --set)")


def check_output(path: Path, *, flag: str, folder: bool = False) -> None:
    """Refuse, before anything runs, an output path that cannot be written: for a file (``folder=False``) an
    existing folder; for a folder an existing file; under a file; or in a folder where no file can be made (tried
    with an unnamed temporary file, so nothing is left behind). Creates nothing; a one-line ConfigError."""
    shown = str(path) or "''"
    if not str(path).strip():
        raise ConfigError(f"{flag} '': empty path; give a {'folder' if folder else 'file'} path")
    ends_as_folder = str(path).endswith(os.sep) or Path(path).name in ("", ".", "..")
    path = user_path(path, where=flag)  # control characters, long names: refused before the path is quoted
    if not folder and ends_as_folder:
        raise ConfigError(f"{flag} {shown}: names a folder; give a file path, e.g. {path / 'model.pt'}")
    if not folder and (problem := side_file_problem(path)) is not None:
        raise ConfigError(f"{flag} {shown}: {problem}")
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {shown}: is an existing file, not a folder; give a new or existing folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag} {shown}: is a folder; give a file path, e.g. {path / 'model.pt'}")
    parent = path if folder and path.is_dir() else path.parent
    for place in (path, *path.parents):  # a dangling link where the output or a folder above it goes
        if place.is_symlink() and not place.exists():
            raise ConfigError(f"{flag} {shown}: {place} is a symbolic link to {os.readlink(place)}, which does not "
                              "exist")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {shown}: {parent} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise ConfigError(f"{flag} {shown}: cannot write in {parent} ({exc.strerror or type(exc).__name__})") from None
    if not folder and path.exists():
        try:
            path.open("r+b").close()
        except OSError as exc:
            raise ConfigError(f"{flag} {shown}: cannot overwrite it ({exc.strerror or type(exc).__name__})") from None
