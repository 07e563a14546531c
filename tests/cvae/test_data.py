from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from cvae.config import ExperimentConfig
from cvae.errors import MAX_MESSAGE
from cvae.data import (EOS, LAB_TEST_TENSES, PAD, DataError, decode_indices, encode_word, make_batch, read_pairs,
                       Data, read_train, training_examples, withheld_rows)


def write(tmp_path: Path, text: str, name: str = "f.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_train_good(tmp_path):
    rows = read_train(write(tmp_path, "abandon abandons abandoning abandoned\nbegin begins beginning began\n"))
    assert rows == [("abandon", "abandons", "abandoning", "abandoned"), ("begin", "begins", "beginning", "began")]


@pytest.mark.lab
def test_real_lab_files_are_accepted(lab_dir):
    rows = read_train(lab_dir / "train.txt")
    assert len(rows) == 1227
    assert len(rows) - len(set(rows)) == 10  # duplicated rows are kept as they are
    pairs = read_pairs(lab_dir / "test.txt")
    assert len(pairs) == 10
    assert [(p.src, p.tgt) for p in pairs] == list(LAB_TEST_TENSES)
    assert pairs[0].source == "abandon" and pairs[0].target == "abandoned"


def test_four_column_pairs(tmp_path):
    pairs = read_pairs(write(tmp_path, "began begins p tp\nrun running sp pg\n"))
    assert [(p.src, p.tgt) for p in pairs] == [(3, 1), (0, 2)]


@pytest.mark.parametrize(
    ("reader", "text", "expected"),
    [
        (read_train, "abandon abandons abandoning\n", "f.txt:1: expected 4 words"),
        (read_train, "a b c d\nAbandon abandons abandoning abandoned\n", "f.txt:2: word 'Abandon' has character 'A'"),
        (read_train, "ab1 b c d\n", "f.txt:1: word 'ab1' has character '1'"),
        (read_train, "\n  \n", "f.txt: empty file"),
        (read_pairs, "go went sp past\n", "f.txt:1: unknown tense 'past'"),
        (read_pairs, "go went sp\n", "f.txt:1: expected 2 columns"),
        (read_pairs, "go\n", "f.txt:1: expected 2 columns"),
        (read_pairs, "go went\ngo goes sp tp\n", "mixes 2-column and 4-column"),
        (read_pairs, "".join("go went\n" for _ in range(11)), "f.txt:11: a 2-column test file"),
        (read_train, "\nsp tp pg p\nwalk walks walking walked\n", "f.txt:2: a header row (sp tp pg p), not data"),
        (read_pairs, "source target sp p\nwalk walked sp p\n", "f.txt:1: a header row (source target sp p)"),
        (read_pairs, "source target\nwalk walked\n", "f.txt:1: a header row (source target)"),
        (read_train, "walk walks walking walked\njump jumps " + "x" * 10_000 + "\u00e9 jumped\n", "f.txt:2: the line is longer than 4096 bytes"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, reader, text, expected):
    with pytest.raises(DataError) as info:
        reader(write(tmp_path, text))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and len(message) <= MAX_MESSAGE


@pytest.mark.parametrize("reader", [read_train, read_pairs])
def test_missing_file(tmp_path, reader):
    with pytest.raises(DataError, match="nope.txt: file not found"):
        reader(tmp_path / "nope.txt")


def test_encoding_roundtrip_and_batch():
    assert decode_indices(encode_word("verb") + [EOS, 5]) == "verb"
    batch = make_batch(["go", "went"])
    assert batch.chars.shape == (2, 4)  # (B, T)
    assert batch.targets.shape == (2, 5)  # (B, T+1)
    assert batch.chars[0, 2] == PAD and batch.targets[0, 2] == EOS and batch.targets[1, 4] == EOS
    assert batch.lengths.tolist() == [2, 4]


def test_training_examples_cover_every_tense():
    words, tenses = training_examples([("go", "goes", "going", "went")])
    assert words == ["go", "goes", "going", "went"] and tenses == [0, 1, 2, 3]


def test_validation_pairs_are_seeded_conversions_of_train_verbs():
    from cvae.data import validation_pairs
    rows = [("go", "goes", "going", "went"), ("run", "runs", "running", "ran")]
    pairs = validation_pairs(rows, n=20, seed=5)
    assert pairs == validation_pairs(rows, n=20, seed=5)
    for p in pairs:
        assert p.src != p.tgt and any(p.source == r[p.src] and p.target == r[p.tgt] for r in rows)
    assert validation_pairs([], n=5, seed=0) == []


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfwalk walks walking walked\n")
    assert read_train(path) == [("walk", "walks", "walking", "walked")]
    path.write_bytes(b"\xef\xbb\xbfwalk walked sp p\n")
    assert read_pairs(path)[0].source == "walk"


def test_binary_data_is_refused_with_its_line(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"walk walks walking walked\n\xff\xfe jumps jumping jumped\n")
    with pytest.raises(DataError, match=r"f.txt:2: not UTF-8 text"):
        read_train(path)


def test_a_word_longer_than_any_verb_is_refused_by_its_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("walk walks walking walked\n" + " ".join(["a" * 100] * 4) + "\n")
    with pytest.raises(DataError, match=r"train.txt:2: word of 100 characters .*at most 64"):
        read_train(path)


def test_lines_are_counted_as_an_editor_counts_them(tmp_path):
    """A form feed, a vertical tab or U+2028 is no line break: the row holding it is the line an editor shows."""
    for odd in ("\x0c", "\x0b", "\u2028", "\x85"):
        path = tmp_path / "train.txt"
        path.write_text(f"walk walks walking walked\njump jumps jumping jum{odd}ped\nrun runs running ran\n",
                        encoding="utf-8")
        with pytest.raises(DataError, match=r"train.txt:2: word 'jum.*ped' has character"):
            read_train(path)


def test_a_data_file_too_large_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "train.txt"
    with path.open("wb") as handle:  # sparse: no time or disk spent making it
        handle.truncate(65 * 2**20)
    with pytest.raises(DataError, match=r"train.txt: is 68157440 bytes, more than the 67108864"):
        read_train(path)


_letters = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=st.lists(st.tuples(_letters, _letters, _letters, _letters), min_size=1, max_size=30),
       n=st.integers(min_value=0, max_value=40), seed=st.integers(min_value=0, max_value=2**32 - 1),
       keep=st.sets(_letters, max_size=5))
def test_withheld_verbs_are_never_trained_in_any_form(rows, n, seed, keep):
    """Whatever the rows (duplicated, sharing forms) a withheld verb has no form in a trained row nor among the
    test words, at least one row stays trained, and the draw is the seed's."""
    held = withheld_rows(rows, n=n, seed=seed, keep=keep)
    trained_words = {w for i, row in enumerate(rows) if i not in held for w in row}
    assert len(held) <= n and len(held) < len(rows)
    for i in held:
        assert not trained_words.intersection(rows[i]) and not keep.intersection(rows[i])
    assert held == withheld_rows(rows, n=n, seed=seed, keep=keep)


def test_the_default_data_withholds_verbs_for_validation_apart_from_test_and_heldout():
    config = ExperimentConfig.model_validate({"data": {"val_verbs": 50, "val_pairs": 120}})
    data = Data.load(config)
    trained = {w for row in data.trained for w in row}
    assert len(data.rows) - len(data.trained) == 50 and len(data.words) == 4 * len(data.trained)
    assert len(data.val_unseen) == 120 and all(p.source not in trained and p.target not in trained
                                               for p in data.val_unseen)
    assert {p.source for p in data.test} <= trained
    assert all(p.source in trained for p in data.val)
