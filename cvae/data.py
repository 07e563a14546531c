"""Vocabulary, tenses, readers for the lab's file formats, and padded batches.

Readers raise DataError with one line naming the file, the line number and what was wrong. Files are UTF-8 (a
byte-order mark is accepted) and have no header: a first line of tense names (`sp tp pg p`) is refused, not trained.
"""

from __future__ import annotations

import codecs
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cvae.config import MAX_WORD_LENGTH, ExperimentConfig
from cvae.errors import UserError, short_repr

TENSES: tuple[str, ...] = ("sp", "tp", "pg", "p")
"""Tense names in their fixed order: simple present, third person, present progressive, simple past."""
HEADER_WORDS = ("source", "target", "src", "tgt")
"""Besides tense names, the words of a header row (`source target sp p`): a first line of only these is refused."""

LAB_TEST_TENSES: tuple[tuple[int, int], ...] = (
    (0, 3), (0, 2), (0, 1), (0, 1), (3, 1), (0, 2), (3, 0), (2, 0), (2, 3), (2, 1),
)
"""(source, target) tense of each line of the lab's 2-column test.txt, by position."""

SOS, EOS = 0, 1
LETTERS = string.ascii_lowercase
PAD = 2 + len(LETTERS)  # 28
UNK = PAD + 1  # 29: decoder input under word dropout
N_OUTPUTS = 2 + len(LETTERS)  # SOS, EOS, a..z: what the decoder can emit
N_INPUTS = UNK + 1  # embedding rows


class DataError(UserError):
    """A one-line, user-facing error in a data file."""


def encode_word(word: str) -> list[int]:
    """'abc' -> [2, 3, 4] (character indices, no SOS/EOS)."""
    return [2 + ord(ch) - ord("a") for ch in word]


def decode_indices(indices: list[int]) -> str:
    """Character indices up to the first EOS (or PAD) -> word; SOS is skipped."""
    chars = []
    for idx in indices:
        if idx in (EOS, PAD):
            break
        if 2 <= idx < 2 + len(LETTERS):
            chars.append(LETTERS[idx - 2])
    return "".join(chars)


@dataclass(frozen=True)
class Pair:
    """One test conversion: `source` in tense `src` -> `target` in tense `tgt` (tense indices)."""

    source: str
    target: str
    src: int
    tgt: int


MAX_DATA_BYTES = 64 * 2**20
"""Largest data file (the lab's train.txt has 30 kB): a larger one is refused before it is read."""
MAX_LINE_BYTES = 4096
"""Longest line of a data file (a row is four words)."""
FIELD_SEPARATOR = re.compile(r"[ \t]+")
"""Fields are separated by spaces or tabs (any other character, a form feed say, is part of a word)."""


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines of ``path`` as (line number, fields), read a line at a time with a bounded size; lines are
    counted as an editor counts them (split on newlines only). A missing, empty or too large file -> DataError."""
    if not path.is_file():
        what = "not a regular file (a folder, a device or a pipe)" if path.exists() else "file not found"
        raise DataError(f"{path}: {what}")
    try:
        return _read_rows(path)
    except OSError as exc:  # unreadable: permissions, an I/O error, a file that is not really one
        raise DataError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    if (size := path.stat().st_size) > MAX_DATA_BYTES:
        raise DataError(f"{path}: is {size} bytes, more than the {MAX_DATA_BYTES} a data file may have")
    rows, read = [], 0
    with path.open("rb") as handle:
        for n, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
            read += len(raw)
            if read > MAX_DATA_BYTES:  # a file that grows, or says it has 0 bytes (/proc)
                raise DataError(f"{path}: holds more than the {MAX_DATA_BYTES} bytes a data file may have")
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{path}:{n}: the line is longer than {MAX_LINE_BYTES} bytes; a row is four words")
            try:
                line = (raw.removeprefix(codecs.BOM_UTF8) if n == 1 else raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{n}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line)") from None
            text = line.removesuffix("\n").removesuffix("\r").strip(" \t")
            if text:
                rows.append((n, FIELD_SEPARATOR.split(text)))
    if not rows:
        raise DataError(f"{path}: empty file, expected at least one line")
    lineno, first = rows[0]
    if set(first) <= set(TENSES) | set(HEADER_WORDS):
        raise DataError(f"{path}:{lineno}: a header row ({' '.join(first)}), not data; remove it (the file has no "
                        "header: the columns are fixed)")
    return rows


def word_problem(word: str) -> str | None:
    """Why ``word`` is not a word of the lab's alphabet (lower-case a-z), or None: the one check of a word, for the
    data files and for the words a user types (``studies.use``)."""
    if len(word) > MAX_WORD_LENGTH:
        return f"word of {len(word)} characters ({short_repr(word)}); a word may have at most {MAX_WORD_LENGTH}"
    if word and all(ch in LETTERS for ch in word):
        return None
    bad = next((ch for ch in word if ch not in LETTERS), "")
    return f"word {short_repr(word)} has character {bad!r}; expected lower-case a-z only"


def _check_word(path: Path, lineno: int, word: str) -> None:
    if (problem := word_problem(word)) is not None:
        raise DataError(f"{path}:{lineno}: {problem}")


def _tense(path: Path, lineno: int, name: str) -> int:
    if name not in TENSES:
        raise DataError(f"{path}:{lineno}: unknown tense {name!r}; expected one of {', '.join(TENSES)}")
    return TENSES.index(name)


def read_train(path: str | Path) -> list[tuple[str, str, str, str]]:
    """Lab train file: every line `sp tp pg p`. Duplicated and noisy rows are kept as they are."""
    path = Path(path)
    rows = []
    for lineno, fields in _lines(path):
        if len(fields) != len(TENSES):
            raise DataError(f"{path}:{lineno}: expected 4 words (sp tp pg p), got {len(fields)}")
        for word in fields:
            _check_word(path, lineno, word)
        rows.append(tuple(fields))
    return rows  # type: ignore[return-value]


def read_pairs(path: str | Path) -> list[Pair]:
    """Test conversions: lab 2-column form (tenses fixed by position, at most 10 lines) or 4-column form."""
    path = Path(path)
    lines = _lines(path)
    pairs = []
    for index, (lineno, fields) in enumerate(lines):
        if len(fields) == 2:
            if index >= len(LAB_TEST_TENSES):
                raise DataError(
                    f"{path}:{lineno}: a 2-column test file fixes tenses by position for {len(LAB_TEST_TENSES)} lines"
                    " only; use the 4-column form `source target source_tense target_tense`")
            src, tgt = LAB_TEST_TENSES[index]
        elif len(fields) == 4:
            src, tgt = _tense(path, lineno, fields[2]), _tense(path, lineno, fields[3])
        else:
            raise DataError(f"{path}:{lineno}: expected 2 columns (source target) or 4 columns"
                            f" (source target source_tense target_tense), got {len(fields)}")
        _check_word(path, lineno, fields[0])
        _check_word(path, lineno, fields[1])
        pairs.append(Pair(fields[0], fields[1], src, tgt))
    columns = {len(fields) for _, fields in lines}
    if len(columns) > 1:
        raise DataError(f"{path}: mixes 2-column and 4-column lines; use one form")
    return pairs


def training_examples(rows: Sequence[tuple[str, ...]]) -> tuple[list[str], list[int]]:
    """Every (word, tense) of the train rows, row-major: the word of row r in tense t is at index 4r + t."""
    words, tenses = [], []
    for row in rows:
        for tense, word in enumerate(row):
            words.append(word)
            tenses.append(tense)
    return words, tenses


@dataclass
class Batch:
    """Padded character tensors of a list of words."""

    chars: torch.Tensor  # (B, T) character indices, PAD after the word
    lengths: torch.Tensor  # (B,) word lengths, without EOS
    targets: torch.Tensor  # (B, T+1) characters then EOS, PAD after


def make_batch(words: list[str]) -> Batch:
    """Pad ``words`` into one Batch."""
    lengths = torch.tensor([len(w) for w in words], dtype=torch.long)
    width = int(lengths.max()) if words else 0
    chars = torch.full((len(words), width), PAD, dtype=torch.long)
    targets = torch.full((len(words), width + 1), PAD, dtype=torch.long)
    for i, word in enumerate(words):
        codes = torch.tensor(encode_word(word), dtype=torch.long)
        chars[i, : len(word)] = codes
        targets[i, : len(word)] = codes
        targets[i, len(word)] = EOS
    return Batch(chars=chars, lengths=lengths, targets=targets)


def validation_pairs(rows: Sequence[tuple[str, ...]], *, n: int, seed: int) -> list[Pair]:
    """``n`` conversions of train verbs (rows and tense directions drawn with ``seed``), like the lab's test set."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n if rows else 0):
        row = rows[rng.randrange(len(rows))]
        src, tgt = rng.sample(range(len(TENSES)), 2)
        pairs.append(Pair(row[src], row[tgt], src, tgt))
    return pairs


def withheld_rows(rows: Sequence[tuple[str, ...]], *, n: int, seed: int, keep: set[str]) -> set[int]:
    """Indices of ``n`` rows drawn with ``seed`` among those holding no word of ``keep`` (the test words, which
    must stay trained) nor a word of another row (a duplicated row withheld would still be trained); fewer when
    fewer rows qualify, and never every row."""
    rows_of: dict[str, set[int]] = {}
    for i, row in enumerate(rows):
        for word in row:
            rows_of.setdefault(word, set()).add(i)
    eligible = [i for i, row in enumerate(rows)
                if not keep.intersection(row) and all(rows_of[word] == {i} for word in row)]
    return set(random.Random(seed).sample(eligible, min(n, len(eligible), len(rows) - 1)))


@dataclass
class Data:
    """Everything a run reads from disk, loaded once: the training rows (``rows``: every row of the file, which
    the Gaussian score counts; ``trained``: those the model trains on, without the withheld verbs) and words, the
    test, heldout and validation conversions (``val`` of trained verbs, ``val_unseen`` of withheld ones)."""

    rows: Sequence[tuple[str, ...]]
    words: list[str]
    tenses: torch.Tensor  # (N,)
    test: list[Pair]
    heldout: list[Pair] | None
    val: list[Pair]
    trained: Sequence[tuple[str, ...]] = ()
    val_unseen: list[Pair] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.trained:
            self.trained = self.rows

    @classmethod
    def load(cls, config: ExperimentConfig) -> "Data":
        """Every file ``config.data`` names; a DataError that starts with the key of the file at fault."""
        cfg = config.data

        def read(name: str, reader: Callable[[Path], Any]) -> Any:
            path = cfg.resolve(name)
            try:
                return None if path is None else reader(path)
            except DataError as exc:
                raise DataError(f"key data.{name}: {exc}") from None

        rows = read("train", read_train)
        if cfg.max_verbs is not None:
            rows = rows[: cfg.max_verbs]
        test = read("test", read_pairs)
        seed = config.train.eval_seed
        held = withheld_rows(rows, n=cfg.val_verbs, seed=seed, keep={w for p in test for w in (p.source, p.target)})
        trained = [row for i, row in enumerate(rows) if i not in held]
        words, tenses = training_examples(trained)
        return cls(rows=rows, words=words, tenses=torch.tensor(tenses), test=test,
                   heldout=read("heldout", read_pairs), val=validation_pairs(trained, n=cfg.val_pairs, seed=seed),
                   trained=trained,
                   val_unseen=validation_pairs([rows[i] for i in sorted(held)], n=cfg.val_pairs, seed=seed + 1))
