"""cvae.paths: one rule for every path a user gives (`~` expanded; names of at most 255 bytes, paths of at most
4096; no control characters), refused in one line naming where the path came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cvae.errors import ConfigError
from cvae.paths import MAX_NAME_BYTES, path_arg, path_problem, user_path


def test_home_is_expanded_and_ordinary_paths_pass():
    assert user_path("~/runs/m.pt", where="--save") == Path.home() / "runs" / "m.pt"
    assert path_arg("~/x") == Path.home() / "x"
    assert path_problem("data/train.txt") is None and path_problem("a" * MAX_NAME_BYTES) is None


@pytest.mark.parametrize(("text", "why"), [
    ("a" * 256, "a file or folder name of 256 bytes"),
    ("dir/" + "é" * 128 + "/x", "a file or folder name of 256 bytes"),
    ("/".join(["abc"] * 1100), "a path may have at most 4096"),
    ("spec\n.yaml", "control character '\\n'"),
    ("a\x00b", "control character '\\x00'"),
])
def test_a_path_beyond_the_rule_is_one_line_naming_where_it_came_from(text, why):
    with pytest.raises(ConfigError) as info:
        user_path(text, where="--storage")
    message = str(info.value)
    assert message.startswith("--storage '") and why in message and "\n" not in message


@given(st.text(min_size=1, max_size=600))
def test_any_text_is_a_path_or_a_one_line_refusal_never_an_os_error(text):
    try:
        path = user_path(text, where="--out")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("--out ")
        return
    path.exists()  # never raises for a path the rule lets through (ENAMETOOLONG is what the rule prevents)
