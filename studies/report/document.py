"""A report as a list of blocks, rendered twice: Markdown and self-contained HTML.

Markdown images link to the PNG next to the file, or, for the copy logged to MLflow (``image_url``), to the MLflow
server's `get-artifact` endpoint by absolute URL: MLflow's Markdown viewer shows an image only from an absolute
http(s) URL (a bare file name is printed as text, a `data:` URL is dropped). Table cells keep `mean ± std`
together (non-breaking spaces).

Inline markup in text: `code` and **bold** only, rendered in both outputs; a Text can be a note (italic).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from studies.tracking import UI_URL


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str
    note: bool = False


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame
    empty_note: str = "no rows"


@dataclass
class Image:
    path: Path
    alt: str


Block = Heading | Text | Bullets | Table | Image


def artifact_url(*, tracking_uri: str, run_id: str, folder: str) -> Callable[[Path], str]:
    """Absolute image URLs for a Markdown file logged to MLflow run ``run_id`` under ``folder``: the tracking
    server itself for an http(s) tracking URI, else a bare `mlflow ui` on this machine (``UI_URL``)."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else UI_URL

    def url(path: Path) -> str:
        return (f"{base}/get-artifact?path={quote(f'{folder}/{path.name}', safe='')}"
                f"&run_uuid={quote(run_id, safe='')}")
    return url


def data_url(path: Path) -> str:
    """The PNG at ``path`` as a `data:` URL (what MLflow's Markdown viewer, and the HTML report, can show)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_markdown(blocks: list[Block], *, image_url: Callable[[Path], str] | None = None) -> str:
    """Markdown of ``blocks``; images link to ``image_url(path)`` (default: the file name, next to the file)."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(f"_{block.text}_" if block.note else block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            out.append(markdown_table(block.frame) if len(block.frame) else f"_{block.empty_note}_")
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({image_url(block.path) if image_url else block.path.name})")
    return "\n\n".join(out) + "\n"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (values as strings, `|` escaped)."""
    def cell(value: object) -> str:
        return _keep_together(str(value)).replace("|", "\\|").replace("\n", " ")
    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _keep_together(text: str) -> str:
    """`0.073 ± 0.005` with non-breaking spaces around ±, so a narrow table never wraps it over lines."""
    return text.replace(" ± ", "\u00a0±\u00a0")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left}th{background:#f2f2f2}img{max-width:100%;margin:1em 0}code{background:#f2f2f2;padding:0 3px}"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def to_html(blocks: list[Block], *, title: str) -> str:
    """One HTML file with every image embedded as base64 PNG."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            body.append(f"<p><em>{_inline(block.text)}</em></p>" if block.note else f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            body.append(block.frame.map(lambda v: _keep_together(str(v)) if isinstance(v, str) else v).to_html(
                index=False, border=0, na_rep="–") if len(block.frame)
                        else f"<p><em>{_inline(block.empty_note)}</em></p>")
        elif isinstance(block, Image):
            body.append(f'<img alt="{html.escape(block.alt)}" src="{data_url(block.path)}">')
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
