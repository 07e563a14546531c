"""Paths a user gives, by one rule for every path flag and every path field: `~` is the home folder, a file or
folder name has at most 255 bytes and the whole path at most 4096 (the limits of Linux file systems, where
``Path.exists()`` itself fails beyond them), and no character is a control character (a newline in a file name
would end up in a study name, a folder name, a log line)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from cvae.errors import ConfigError, short_repr

UNPRINTABLE = ("Cc", "Zl", "Zp")
"""Unicode categories refused in a path: control characters and the line and paragraph separators."""
MAX_NAME_BYTES = 255
"""Longest file or folder name (bytes, UTF-8)."""
MAX_PATH_BYTES = 4096
"""Longest path (bytes, UTF-8)."""


def expand(text: str | Path) -> Path:
    """``text`` as a path with `~` (and `~user`) expanded; a `~user` that names no user stays as it is (and is then
    refused by ``path_problem``)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # `~nosuchuser`: Python cannot tell its home folder
        return Path(text)


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot be a path here, or None."""
    if any(unicodedata.category(ch) in UNPRINTABLE for ch in text):
        bad = next(ch for ch in text if unicodedata.category(ch) in UNPRINTABLE)
        return f"holds the control character {bad!r}; a path here is printable text"
    if text.startswith("~") and expand(text) == Path(text) and text != "~" * len(text):
        return f"starts with {text.split('/', 1)[0]!r}, the home folder of a user this machine does not have"
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        return f"is {len(encoded)} bytes long; a path may have at most {MAX_PATH_BYTES}"
    longest = max((part for part in encoded.split(b"/")), key=len, default=b"")
    if len(longest) > MAX_NAME_BYTES:
        return (f"has a file or folder name of {len(longest)} bytes; a name may have at most {MAX_NAME_BYTES} "
                f"({short_repr(longest.decode('utf-8', 'replace'))})")
    return None


def user_path(text: str | Path, *, where: str) -> Path:
    """``text`` as a path (`~` expanded), or a one-line ConfigError `WHERE 'TEXT': why`."""
    problem = path_problem(str(text))
    if problem is not None:
        raise ConfigError(f"{where} {short_repr(str(text))}: {problem}")
    path = expand(text)
    for i, part in enumerate(path.parts):  # `missing/../x`: the system resolves it only while `missing` exists
        if part == ".." and i and not Path(*path.parts[:i]).is_dir():
            raise ConfigError(f"{where} {short_repr(str(text))}: goes back up ('..') from {Path(*path.parts[:i])}, "
                              "which is not an existing folder")
    try:
        path.resolve()
    except (RuntimeError, OSError) as exc:  # a loop of symbolic links (RuntimeError before Python 3.13)
        raise ConfigError(f"{where} {short_repr(str(text))}: cannot be followed ({exc})") from None
    return path


SIDE_FILE_SUFFIX = "-journal"
"""The longest suffix added to the name of a file we write for a file beside it (SQLite's `-journal`; a
checkpoint's `.tmp`, a journal's `.lock` are shorter)."""


def side_file_problem(path: Path) -> str | None:
    """Why the files made beside ``path`` (``SIDE_FILE_SUFFIX``) could not be, or None."""
    if len(path.name.encode("utf-8", "surrogatepass")) + len(SIDE_FILE_SUFFIX) > MAX_NAME_BYTES:
        return (f"its file name leaves no room for the '{SIDE_FILE_SUFFIX}' or '.tmp' file made beside it (a name "
                f"may have at most {MAX_NAME_BYTES} bytes)")
    return None


def path_arg(text: str) -> Path:
    """argparse ``type`` of every path flag: `~` expanded (checked, with the flag's name, by the command)."""
    return expand(text)
