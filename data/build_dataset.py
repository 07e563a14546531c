"""Build the English verb-tense data set (train.txt, test.txt, heldout.txt).

Where the data comes from
-------------------------
Every verb and every inflected form is read from the inflection lexicon that
ships inside the installed ``lemminflect`` package
(``lemminflect/resources/infl_lu.csv.gz``, located through
``lemminflect.config.inflection_lu_fn`` and parsed with lemminflect's own
``InflectionLUCodec``).  Nothing is downloaded.  Only rows whose category is
``verb`` are used; lemminflect's OOV rules, its neural models and its
hand-written ``infl_overrides.csv`` are not (those overrides target tagging
corner cases and would even corrupt some verbs, e.g. ``sting`` -> VBG ``sting``).
For each tag the first spelling listed is taken.

License: the lemminflect package (0.2.3) is MIT-licensed.  Its LICENSE file reads
"The MIT License (MIT) Copyright (C) 2019 Brad Jascob", and its metadata
carries the classifier "License :: OSI Approved :: MIT License" (the bare
``License:`` metadata field says ``UNKNOWN``).  Per lemminflect's README the
lexicon itself is derived from the NIH SPECIALIST Lexicon.

What is built
-------------
* ``train.txt``   -- one verb per line: ``sp tp pg p`` (VB VBZ VBG VBD).
* ``test.txt``    -- 10 lines ``source target``, verbs from train, tense pairs
  fixed by position (``TEST_DIRECTIONS``).
* ``heldout.txt`` -- ``source target source_tense target_tense`` for verbs that
  are not in train (no lemma and no word form shared with train), 20 lines for
  each of the 12 ordered tense pairs.

A verb is *irregular* when its past form does not follow the regular -ed/-d
spelling rules (begin/began, lead/led).  The lexicon has no frequencies, so the
lemmas are sorted and sampled with ``random.Random(SEED)``; the output is
reproducible byte for byte.

Usage: ``python -m data.build_dataset [--out DIR] [--check]``
"""
from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
import tempfile
from pathlib import Path

from lemminflect import config
from lemminflect.codecs.InflectionLUCodec import InflectionLUCodec

from cvae.data import TENSES

SEED = 2019
PENN_TAGS = ("VB", "VBZ", "VBG", "VBD")  # same order as TENSES
TEST_DIRECTIONS = ((0, 3), (0, 2), (0, 1), (0, 1), (3, 1), (0, 2), (3, 0), (2, 0), (2, 3), (2, 1))
HELDOUT_DIRECTIONS = tuple((s, t) for s in range(4) for t in range(4) if s != t)
TRAIN_SIZE = 1300
TRAIN_IRREGULAR = 180
HELDOUT_PER_DIRECTION = 20
HELDOUT_IRREGULAR = 24
FILE_NAMES = ("train.txt", "test.txt", "heldout.txt")

WORD = re.compile(r"[a-z]{2,15}")
# Prefixes that turn an irregular verb into another one (take -> overtake).
COMPOUND_PREFIXES = ("be", "for", "fore", "in", "inter", "mis", "out", "over", "re", "un", "under", "up", "with")
# Lexicon entries whose past form is a typo: bide -> "boded", bestride -> "betrode".
LEXICON_ERRORS = frozenset({"bestride", "bide"})
IRREGULAR_THIRD_PERSON = {"have": "has"}  # 'be' is not a lexicon verb

Row = tuple[str, str, str, str]


def load_lexicon_verbs(path: str | Path = config.inflection_lu_fn) -> dict[str, Row]:
    """Return {lemma: (VB, VBZ, VBG, VBD)} for every usable verb of the lexicon."""
    verbs = {}
    with gzip.open(path, "rt", encoding="utf-8") as lexicon:
        for line in lexicon:
            lemma, category, forms = InflectionLUCodec.fromString(line)
            if category != "verb" or lemma in LEXICON_ERRORS:
                continue
            if not all(tag in forms for tag in PENN_TAGS):
                continue
            row = tuple(forms[tag][0] for tag in PENN_TAGS)
            if all(WORD.fullmatch(word) for word in row) and has_regular_suffixes(row):
                verbs[lemma] = row
    return dict(sorted(verbs.items()))


def has_regular_suffixes(row: Row) -> bool:
    """True if the -s and -ing forms follow English spelling rules for the lemma.

    Rejects lexicon rows that are inconsistent or mix spelling variants
    (torpedo -> VBZ "torpedo", jell -> "gels", instal -> "installs").
    """
    lemma, third, progressive, _ = row
    stem, last = lemma[:-1], lemma[-1]
    thirds = {lemma + "s", lemma + "es", stem + "ies", lemma + last + "es", IRREGULAR_THIRD_PERSON.get(lemma)}
    progressives = {lemma + "ing", stem + "ing", lemma + last + "ing", lemma + "king", lemma[:-2] + "ying"}
    return third in thirds and progressive in progressives


def is_irregular(row: Row) -> bool:
    """True if the past form does not follow the regular -ed/-d spelling rules."""
    lemma, past = row[0], row[3]
    regular = {lemma + "ed", lemma + lemma[-1] + "ed", lemma + "ked"}
    if lemma.endswith("e"):
        regular.add(lemma + "d")
    if lemma.endswith("y") and lemma[-2] not in "aeiou":
        regular.add(lemma[:-1] + "ied")
    return past not in regular


def is_compound(lemma: str, *, bases: set[str]) -> bool:
    """True if lemma is a prefix plus another verb of `bases` (undertake = under + take)."""
    return any(lemma.startswith(p) and lemma[len(p):] in bases for p in COMPOUND_PREFIXES)


def select_train(*, verbs: dict[str, Row], rng: random.Random) -> list[Row]:
    """Pick TRAIN_SIZE verbs: TRAIN_IRREGULAR irregulars (simple ones first), the rest regular."""
    irregular = [lemma for lemma, row in verbs.items() if is_irregular(row)]
    regular = [lemma for lemma, row in verbs.items() if not is_irregular(row)]
    simple = [lemma for lemma in irregular if not is_compound(lemma, bases=set(irregular))]
    compound = [lemma for lemma in irregular if lemma not in simple]
    rng.shuffle(simple)
    rng.shuffle(compound)
    chosen = (simple + compound)[:TRAIN_IRREGULAR]
    chosen += rng.sample(regular, TRAIN_SIZE - len(chosen))
    return sorted(verbs[lemma] for lemma in chosen)


def select_test(*, train: list[Row], rng: random.Random) -> list[tuple[str, str]]:
    """Pick one train verb per entry of TEST_DIRECTIONS: (source word, target word)."""
    rows = rng.sample(train, len(TEST_DIRECTIONS))
    return [(row[s], row[t]) for row, (s, t) in zip(rows, TEST_DIRECTIONS)]


def select_heldout(*, verbs: dict[str, Row], train: list[Row], rng: random.Random) -> list[tuple[str, str, str, str]]:
    """Pick verbs sharing no lemma or form with train, HELDOUT_PER_DIRECTION per tense pair."""
    train_words = {word for row in train for word in row}
    unseen = [row for row in verbs.values() if train_words.isdisjoint(row)]
    irregular = [row for row in unseen if is_irregular(row)]
    regular = [row for row in unseen if not is_irregular(row)]
    total = HELDOUT_PER_DIRECTION * len(HELDOUT_DIRECTIONS)
    rows = rng.sample(irregular, HELDOUT_IRREGULAR) + rng.sample(regular, total - HELDOUT_IRREGULAR)
    # Deal the rows round-robin so the irregulars spread evenly over the directions.
    dealt = sorted(enumerate(rows), key=lambda item: item[0] % len(HELDOUT_DIRECTIONS))
    lines = []
    for i, row in dealt:
        s, t = HELDOUT_DIRECTIONS[i % len(HELDOUT_DIRECTIONS)]
        lines.append((row[s], row[t], TENSES[s], TENSES[t]))
    return lines


def render(*, verbs: dict[str, Row]) -> dict[str, str]:
    """Return {file name: file text} for the three data files."""
    rng = random.Random(SEED)
    train = select_train(verbs=verbs, rng=rng)
    test = select_test(train=train, rng=rng)
    heldout = select_heldout(verbs=verbs, train=train, rng=rng)
    texts = ["".join(" ".join(fields) + "\n" for fields in rows) for rows in (train, test, heldout)]
    return dict(zip(FILE_NAMES, texts))


def write(*, texts: dict[str, str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out_dir / name).write_text(text, encoding="ascii", newline="\n")


def summary(texts: dict[str, str]) -> str:
    train = [line.split() for line in texts["train.txt"].splitlines()]
    heldout = [line.split() for line in texts["heldout.txt"].splitlines()]
    n_irregular = sum(is_irregular(tuple(row)) for row in train)
    directions = {(row[2], row[3]) for row in heldout}
    return (
        f"train: {len(train)} verbs ({n_irregular} irregular, {n_irregular / len(train):.1%}); "
        f"test: {len(texts['test.txt'].splitlines())} pairs; "
        f"heldout: {len(heldout)} pairs over {len(directions)} directions "
        f"({HELDOUT_IRREGULAR} from irregular verbs)"
    )


def check(out_dir: Path) -> list[str]:
    """Rebuild in a temporary directory; return the names of files in out_dir that differ."""
    with tempfile.TemporaryDirectory() as tmp:
        write(texts=render(verbs=load_lexicon_verbs()), out_dir=Path(tmp))
        return [
            name for name in FILE_NAMES
            if not (out_dir / name).is_file() or (out_dir / name).read_bytes() != (Path(tmp) / name).read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: the directory of this script)")
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temporary directory and exit 1 if a file in --out differs")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.out)
        if stale:
            print(f"{', '.join(stale)} in {args.out} differ from a fresh build; "
                  "run python -m data.build_dataset", file=sys.stderr)
            return 1
        print(f"{', '.join(FILE_NAMES)} in {args.out} are up to date")
        return 0
    texts = render(verbs=load_lexicon_verbs())
    write(texts=texts, out_dir=args.out)
    print(f"{summary(texts)} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
