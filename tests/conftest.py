"""Shared fixtures: paths to the project's data and the lab's, and tiny configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvae.config import ExperimentConfig, build_config

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
LAB = ROOT.parent / "shared" / "data" / "lab"


def tiny_config(**sections) -> ExperimentConfig:
    """A small, fast experiment on the first 30 default verbs (a few seconds to train)."""
    raw = {
        "data": {"train": str(DATA / "train.txt"), "test": str(DATA / "test.txt"), "heldout": None,
                 "max_verbs": 30},
        "model": {"hidden_size": 32, "embed_size": 16, "latent_size": 8, "cond_size": 4},
        "optim": {"name": "adam", "lr": 0.01, "clip_norm": 1.0},
        "train": {"epochs": 3, "batch_size": 16, "gaussian_samples": 10},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return build_config(raw, source="tiny")


@pytest.fixture
def lab_dir() -> Path:
    """The lab's real dataset; CI has it at the same relative path, so its absence is a failure."""
    assert (LAB / "train.txt").is_file(), f"lab dataset missing at {LAB}"
    return LAB
