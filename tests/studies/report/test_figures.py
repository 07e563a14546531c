"""studies.report.figures: each figure writes a PNG, or a placeholder PNG saying why there was nothing to draw."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from studies.report import figures

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.read_bytes().startswith(PNG_HEADER)


def test_a_placeholder_is_a_png_that_returns_its_reason(tmp_path):
    path = tmp_path / "empty.png"
    assert figures.placeholder(path=path, title="Training curves", note="nothing logged") == "nothing logged"
    assert is_png(path)


@pytest.mark.parametrize(("draw", "reason"), [
    (lambda path: figures.explosion_map(cells=pd.DataFrame(), varied=["optim.lr"], path=path), "no finished"),
    (lambda path: figures.explosion_map(cells=pd.DataFrame({"optim.name": ["adam"]}), varied=["model.latent_size"],
                                        path=path), "neither the learning rate nor the clip norm"),
    (lambda path: figures.collapse_map(cells=pd.DataFrame(), path=path), "no trial finished training"),
    (lambda path: figures.curves(curves=pd.DataFrame(), roles=[], path=path), "no epoch was logged"),
], ids=["explosion-no-cells", "explosion-no-lr-or-clip", "collapse-no-cells", "curves-no-epochs"])
def test_nothing_to_draw_is_said_on_the_figure_and_returned(tmp_path, draw, reason):
    path = tmp_path / "figure.png"
    assert reason in draw(path)
    assert is_png(path)


def test_text_on_a_cell_is_black_on_light_and_white_on_dark():
    assert figures._ink((1.0, 1.0, 0.8, 1.0)) == "black"
    assert figures._ink((0.1, 0.0, 0.3, 1.0)) == "white"


def test_importance_draws_one_panel_per_objective(tmp_path):
    path = tmp_path / "importance.png"
    figures.importance(importances={"explosion block": {"optim.lr": 0.7, "optim.name": 0.3}}, path=path)
    assert is_png(path)
