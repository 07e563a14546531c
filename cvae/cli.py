"""Command-line helpers shared by every command: the argument parser, ``--set``, output checks."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from cvae.errors import ConfigError, one_line


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with every argument error as ONE line on stderr, `PROG: error: MESSAGE (see --help)`,
    and exit status 2, like every other bad input (argparse prints its usage block first); subcommands inherit it.
    Flags must be given whole: `--tracking` is not taken for `--tracking-uri`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


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
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {shown}: is an existing file, not a folder; give a new or existing folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag} {shown}: is a folder; give a file path, e.g. {path / 'model.pt'}")
    parent = path if folder and path.is_dir() else path.parent
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
