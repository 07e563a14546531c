"""cvae.yamlfile: the one YAML loader every spec and experiment file goes through (strict, bounded, one-line
errors naming the file and line)."""


import pytest

from cvae.configfile import find_spec_file
from cvae.errors import MAX_MESSAGE, ConfigError
from cvae.yamlfile import MAX_YAML_BYTES, load_yaml


def _load_error(tmp_path, data: bytes) -> str:
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    message = str(info.value)
    assert "\n" not in message and len(message) <= MAX_MESSAGE and message.startswith(str(path))
    return message.removeprefix(f"{path}: ")


@pytest.mark.parametrize(("data", "expected"), [
    (b"train: {epochs: 1}\nmodel: {}\ntrain: {epochs: 2}\n", "line 3: key 'train' is given twice (lines 1 and 3)"),
    (b"optim:\n  lr: 0.1\n  name: adam\n  lr: 0.2\n", "line 4: key 'lr' is given twice (lines 2 and 4)"),
    (b"optim: {lr: 0.1, lr: 0.2}\n", "line 1: key 'lr' is given twice (line 1)"),
    (b"a: &x 1\nb: *x\n", "line 1: YAML anchors and aliases"),
    (b"optim:\n  <<: {lr: 0.1}\n", "line 2: merge keys (<<) are not supported"),
    (b"", "spec is empty"),
    (b"# only\n\n# comments\n", "spec is empty"),
    (b"a: 1\nb: [1, 2\x00]\n", "line 2: NUL byte: a binary file"),
    (b"a: 1\n\n\xff\xfe\xfd\n", "line 3: not UTF-8 text"),
    ("a: 1\n".encode("utf-16"), "line 1: UTF-16 text"),
    (b"a: 1\nb: \x1b[31m\n", "line 2: character '\\x1b' is not allowed"),
    (b"a: " + b"[" * 50 + b"]" * 50 + b"\n", "nested more than 32 levels deep"),
    (b"a: " + b"7" * 5000 + b"\n", "line 1: cannot read"),
    (b"a: 2023-02-29\n", "line 1: cannot read '2023-02-29'"),
    (b"# header\n- a\n- b\n", "line 2: expected a mapping of sections at the top level, got list"),
    (b"a: 1\nb: 'unclosed\n", "YAML syntax error"),
])
def test_loader_refuses_with_file_and_line(tmp_path, data, expected):
    assert expected in _load_error(tmp_path, data)


def test_loader_refuses_an_alias_bomb_at_once(tmp_path, monkeypatch):
    """Refused at its first anchor: a handful of nodes composed, whatever the machine's speed."""
    from cvae.yamlfile import StrictLoader

    composed = []
    original = StrictLoader.compose_node
    monkeypatch.setattr(StrictLoader, "compose_node", lambda self, *a: composed.append(1) or original(self, *a))
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]  # 10^12 strings expanded
    message = _load_error(tmp_path, ("\n".join(levels) + "\n").encode())
    assert len(composed) < 10
    assert message.startswith("line 1: YAML anchors and aliases")


def test_loader_refuses_a_file_over_the_size_limit_without_parsing_it(tmp_path, monkeypatch):
    from cvae import yamlfile

    def parsed(*args, **kwargs):
        raise AssertionError("a file over the limit was parsed")

    monkeypatch.setattr(yamlfile, "StrictLoader", parsed)
    data = b"search:\n  optim.lr: {choices: [" + b"0.1, " * (MAX_YAML_BYTES // 5) + b"0.2]}\n"
    message = _load_error(tmp_path, data)
    assert message == f"is {len(data)} bytes, larger than the {MAX_YAML_BYTES} a spec may be"


def test_loader_accepts_a_byte_order_mark_and_keeps_the_values(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfoptim: {lr: 0.5}\nname: caf\xc3\xa9\n")
    assert load_yaml(path) == {"optim": {"lr": 0.5}, "name": "café"}


def test_loader_names_a_folder_and_refuses_an_empty_name(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_yaml(tmp_path)
    with pytest.raises(ConfigError, match="is a folder"):
        find_spec_file(tmp_path)
    with pytest.raises(ConfigError, match="empty file name"):
        find_spec_file("")


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85"])
def test_line_numbers_are_an_editors_whatever_the_text_holds(tmp_path, odd):
    """PyYAML breaks lines at U+2028, U+2029 and NEL too; an editor does not, and neither do our messages."""
    path = tmp_path / "spec.yaml"
    path.write_text(f'name: "a{odd}b"\nmodel: {{hidden_size: 32}}\nmodel: {{hidden_size: 16}}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 3: key 'model' is given twice \(lines 2 and 3\)"):
        load_yaml(path)


def test_yes_and_on_are_text_and_1e_3_is_a_number(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("a: yes\nb: on\nc: 1e-3\nd: true\ne: 010\n")
    assert load_yaml(path) == {"a": "yes", "b": "on", "c": 0.001, "d": True, "e": 10.0}
