"""Tests for data/build_dataset.py and the committed data/*.txt files."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cvae.data import TENSES
from data.build_dataset import FILE_NAMES as FILES
from data.build_dataset import TEST_DIRECTIONS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
WORD = re.compile(r"[a-z]{2,15}")


def run_builder(*args: str, script: bool = False) -> subprocess.CompletedProcess:
    entry = [str(DATA / "build_dataset.py")] if script else ["-m", "data.build_dataset"]
    return subprocess.run([sys.executable, *entry, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def read_rows(name: str) -> list[list[str]]:
    return [line.split(" ") for line in (DATA / name).read_text(encoding="ascii").splitlines()]


@pytest.fixture(scope="module")
def train() -> list[list[str]]:
    return read_rows("train.txt")


@pytest.fixture(scope="module")
def heldout() -> list[list[str]]:
    return read_rows("heldout.txt")


def test_build_reproduces_committed_files(tmp_path: Path) -> None:
    result = run_builder("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_check_passes_on_committed_files() -> None:
    result = run_builder("--check", script=True)
    assert result.returncode == 0, result.stderr


def test_check_fails_on_modified_file(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(DATA / name, tmp_path / name)
    with open(tmp_path / "test.txt", "a", encoding="ascii") as f:
        f.write("go went\n")
    result = run_builder("--check", "--out", str(tmp_path))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "test.txt" in result.stderr


@pytest.mark.parametrize("name", FILES)
def test_file_format(name: str) -> None:
    raw = (DATA / name).read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    assert all(line == line.strip() and "  " not in line for line in raw.decode("ascii").splitlines())


def test_train(train: list[list[str]]) -> None:
    assert 1200 <= len(train) <= 1600
    assert all(len(row) == 4 for row in train)
    assert all(WORD.fullmatch(word) for row in train for word in row)
    assert len({row[0] for row in train}) == len(train)
    irregular = [row for row in train if not row[3].endswith("ed")]
    assert len(irregular) >= 0.08 * len(train)
    assert ["go", "goes", "going", "went"] in train
    assert ["begin", "begins", "beginning", "began"] in train


def test_test_file(train: list[list[str]]) -> None:
    rows = read_rows("test.txt")
    assert len(rows) == 10
    assert all(len(row) == 2 for row in rows)
    train_rows = [tuple(row) for row in train]
    for (source, target), (s, t) in zip(rows, TEST_DIRECTIONS):
        assert any(row[s] == source and row[t] == target for row in train_rows), (source, target)


def test_heldout(train: list[list[str]], heldout: list[list[str]]) -> None:
    assert len(heldout) >= 200
    assert all(len(row) == 4 for row in heldout)
    assert all(WORD.fullmatch(word) for row in heldout for word in row[:2])
    directions = {(s, t) for s in TENSES for t in TENSES if s != t}
    assert {(row[2], row[3]) for row in heldout} == directions
    for direction in directions:
        assert sum((row[2], row[3]) == direction for row in heldout) >= 15
    train_words = {word for row in train for word in row}
    assert not train_words & {word for row in heldout for word in row[:2]}
    assert any(row[3] == "p" and not row[1].endswith("ed") for row in heldout)
