"""A small base spec and the helpers the spec tests write files and read one-line errors with."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvae.errors import ConfigError
from studies.spec import load_spec

BASE = "extends: baseline.yaml\nmodel: {hidden_size: 32, embed_size: 16, latent_size: 8, cond_size: 4}\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_spec(path, overrides=list(overrides))
    message = str(info.value)
    assert "\n" not in message
    return message
