"""Keeping URL passwords out of everything a study prints, logs or records: ``redact`` for a URL shown on purpose,
``hide_secrets`` for everything else this process writes (stdout, stderr, log records)."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import TextIO
from urllib.parse import SplitResult, unquote, urlsplit


def _split(url: str) -> SplitResult | None:
    """``urlsplit(url)`` for a URL, None for anything else (a journal path, a URL Python cannot parse)."""
    if "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is where a malformed one raises
    except ValueError:
        return None
    return parts


_USERINFO = re.compile(r"(://[^/@:]*):[^/@]*@")
"""`user:password@` of a URL Python cannot parse (masked as text)."""


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (``user:secret@host`` and ``password=`` query values); a
    malformed URL has anything between `user:` and `@` masked."""
    parts = _split(url)
    if parts is None and "://" in url:
        return _USERINFO.sub(r"\1:***@", url)
    if parts is not None and parts.password:
        userinfo, host = parts.netloc.rsplit("@", 1)
        url = url.replace(parts.netloc, f"{userinfo.split(':', 1)[0]}:***@{host}", 1)
    if parts is not None and "password=" in parts.query.lower():
        query = "&".join(f"{p.split('=', 1)[0]}=***" if p.lower().startswith("password=") else p
                         for p in parts.query.split("&"))
        url = url.replace(parts.query, query, 1)
    return url


_SECRETS: set[str] = set()
"""Passwords this process must never print, log or record (registered by ``hide_secrets``)."""


def passwords(url: str | None) -> set[str]:
    """The passwords in a URL (``user:secret@host`` and ``password=`` query values), as written and decoded."""
    if not url or "://" not in url:
        return set()
    parts = _split(url)
    if parts is None:  # malformed: whatever stands where a password would
        return {m.group(0)[len(m.group(1)) + 1:-1] for m in _USERINFO.finditer(url)} - {""}
    found = {parts.password or ""} | {p.split("=", 1)[1] for p in parts.query.split("&")
                                       if p.lower().startswith("password=")}
    return {form for value in found if value for form in (value, unquote(value)) if form}


def scrub(text: str) -> str:
    """``text`` with every password registered by ``hide_secrets`` replaced by `***`."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def hide_secrets(*urls: str | None) -> None:
    """Keep the passwords of ``urls`` (``--storage``, ``--tracking-uri``) out of everything this process writes:
    stdout and stderr (tracebacks and warnings included) go through ``scrub``, and so does every log record,
    whichever handler prints it. Nothing changes when no URL holds a password; calling it again adds secrets."""
    new = set().union(*(passwords(url) for url in urls)) - _SECRETS
    if not new:
        return
    if not _SECRETS:
        sys.stdout, sys.stderr = (_Scrubbed(stream) if stream is not None else None
                                  for stream in (sys.stdout, sys.stderr))
        logging.setLogRecordFactory(_scrubbed_records(logging.getLogRecordFactory()))
    _SECRETS.update(new)


class _Scrubbed:
    """A text stream that writes through ``scrub`` (everything else is the wrapped stream's)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _scrubbed_records(factory):  # noqa: ANN001, ANN202 - logging's record factory protocol
    """A log record factory that scrubs the formatted message, the traceback and the stack of every record."""

    def make(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        record = factory(*args, **kwargs)
        try:
            record.msg, record.args = scrub(record.getMessage()), None
        except Exception:  # noqa: BLE001 - a malformed record stays as logging would show it
            return record
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return record

    return make
