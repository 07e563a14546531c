"""User errors: one root class (UserError), always one bounded line naming the file and the key or line, and
the helpers that keep them so."""

from __future__ import annotations

import difflib
import reprlib
from typing import Any

from pydantic import BaseModel, ValidationError

LONG_WORD = 60
"""A word longer than this (a long path, a long value) is what one_line shortens first, to this length."""
MAX_MESSAGE = 400
"""Longest user-facing error line: a longer one is cut at its end (its start names the file and the key or line)."""


def one_line(text: object, *, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line (newlines and runs of spaces folded), at most ``limit`` characters. A longer one first
    loses the middle of its longest words (a long path keeps its start and its end, and the reason stays whole),
    then, if it must, its end."""
    words = str(text).split()
    line = " ".join(words)
    while len(line) > limit:
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        if len(word) <= LONG_WORD:
            return line[: limit - 3] + "..."
        keep = max(len(word) - (len(line) - limit) - 3, LONG_WORD - 3)
        head = keep // 3  # a path's end holds the file name and its line: keep more of it
        words[longest] = word[:head] + "..." + word[len(word) - (keep - head):]
        line = " ".join(words)
    return line


def short_repr(value: object) -> str:
    """``repr(value)`` bounded in size (a 10k-element list is shown as its first few elements)."""
    return _REPR.repr(value)


def _bounded_repr() -> reprlib.Repr:
    bounded = reprlib.Repr()
    bounded.maxlevel, bounded.maxlist, bounded.maxdict, bounded.maxstring, bounded.maxother = 3, 8, 8, 60, 60
    return bounded


_REPR = _bounded_repr()


class UserError(ValueError):
    """A user-facing error: always one line of at most ``MAX_MESSAGE`` characters, whatever it quotes."""

    def __init__(self, message: object) -> None:
        super().__init__(one_line(message))


class ConfigError(UserError):
    """A one-line, user-facing error in a config or spec: names the file and the key."""


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names of the fields of the (nested) model at ``loc``; [] when loc does not lead to a model."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def describe_validation_error(err: ValidationError, *, schema: type[BaseModel], source: str, prefix: str = "") -> str:
    """First error of ``err`` as one line: `SOURCE: key a.b.c: what was wrong (did you mean x?)`."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = prefix + ".".join(str(p) for p in loc) if loc else (prefix.rstrip(".") or "<top>")
    if first["type"] == "extra_forbidden":
        candidates = _fields_at(schema, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), candidates, n=1)
        hint = f" (did you mean '{prefix}{'.'.join(str(p) for p in (*loc[:-1], close[0]))}'?)" if close else (
            f" (allowed: {', '.join(candidates)})" if candidates else "")
        return f"{source}: key {key}: unknown key{hint}"
    msg = first["msg"].replace("Value error, ", "")
    extra = ""
    whole = first["type"] == "value_error" and isinstance(first.get("input"), dict)  # a section's own check
    if "input" in first and first["type"] not in ("missing",) and not whole:
        extra = f", got {short_repr(first['input'])}"
    return f"{source}: key {key}: {msg}{extra}"
