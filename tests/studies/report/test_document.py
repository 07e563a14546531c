"""studies.report.document: the report's blocks rendered as Markdown (images next to the file, or by absolute URL
for the copy logged to MLflow) and as one self-contained HTML file."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd

from studies.report.document import (
    Bullets,
    Heading,
    Image,
    Table,
    Text,
    artifact_url,
    data_url,
    markdown_table,
    to_html,
    to_markdown,
)
from studies.tracking import UI_URL

PNG = b"\x89PNG\r\n\x1a\n tiny"


def blocks(tmp_path: Path) -> list:
    image = tmp_path / "scores.png"
    image.write_bytes(PNG)
    return [Heading("Leaderboard"), Text("the **winner** is `kl`"), Text("search only", note=True),
            Bullets(["one", "two"]), Table(pd.DataFrame({"config": ["a|b"], "bleu": ["0.7 ± 0.1"]})),
            Table(pd.DataFrame({"x": []}), empty_note="nothing finished"), Image(image, alt="scores")]


def test_markdown_renders_each_block_and_links_images_next_to_the_file(tmp_path):
    text = to_markdown(blocks(tmp_path))
    assert text.startswith("## Leaderboard\n\nthe **winner** is `kl`\n\n_search only_\n\n- one\n- two\n\n")
    assert "| config | bleu |\n|---|---|\n| a\\|b | 0.7\u00a0±\u00a00.1 |" in text
    assert "_nothing finished_" in text and text.endswith("![scores](scores.png)\n")


def test_markdown_for_mlflow_links_images_by_absolute_url(tmp_path):
    url = artifact_url(tracking_uri="sqlite:///mlflow.db", run_id="r1", folder="report")
    assert url(Path("a/scores.png")) == f"{UI_URL}/get-artifact?path=report%2Fscores.png&run_uuid=r1"
    served = artifact_url(tracking_uri="http://host:5000/", run_id="r1", folder="report")
    assert served(Path("x.png")).startswith("http://host:5000/get-artifact?path=report%2Fx.png")
    assert to_markdown(blocks(tmp_path), image_url=url).endswith(f"]({url(Path('scores.png'))})\n")


def test_html_embeds_images_and_escapes_text(tmp_path):
    page = to_html([*blocks(tmp_path), Text("<script>")], title="demo & co")
    assert "<title>demo &amp; co</title>" in page and "&lt;script&gt;" in page and "<script>" not in page
    assert "<strong>winner</strong>" in page and "<code>kl</code>" in page and "<em>search only</em>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert "<li>one</li><li>two</li>" in page and "<p><em>nothing finished</em></p>" in page
    assert data_url(tmp_path / "scores.png").startswith("data:image/png;base64,")


def test_a_markdown_table_keeps_cells_on_one_line():
    table = markdown_table(pd.DataFrame({"a": ["x\ny"], "b": [1.5]}))
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x y | 1.5 |"]
