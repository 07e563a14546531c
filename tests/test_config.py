import time

import pytest

from cvae.errors import ConfigError, MAX_MESSAGE
from cvae.yamlfile import MAX_YAML_BYTES, load_yaml
from cvae.cli import ArgumentParser, check_output
from cvae.config import ExperimentConfig
from cvae.configfile import build_config, find_spec_file, load_config, parse_override


def test_defaults_are_documented_everywhere():
    sections = [ExperimentConfig] + [field.annotation for field in ExperimentConfig.model_fields.values()
                                     if isinstance(field.annotation, type) and hasattr(field.annotation,
                                                                                       "model_fields")]
    for section in sections:
        for name, field in section.model_fields.items():
            assert field.description, f"{section.__name__}.{name} has no docstring"


@pytest.mark.parametrize(
    ("raw", "overrides", "expected"),
    [
        ({"optim": {"lerning_rate": 0.1}}, [], "x.yaml: key optim.lerning_rate: unknown key"),
        ({"optim": {"lr": 0.1, "clip_nrom": 1}}, [], "did you mean 'optim.clip_norm'?"),
        ({"optm": {}}, [], "did you mean 'optim'?"),
        ({"optim": {"lr": "fast"}}, [], "key optim.lr: Input should be a valid number"),
        ({"optim": {"lr": -1}}, [], "key optim.lr: Input should be greater than 0"),
        ({"optim": {"name": "rmsprop"}}, [], "key optim.name: Input should be 'sgd', 'adam' or 'adamw'"),
        ({"kl": {"schedule": "sigmoid"}}, [], "key kl.schedule"),
        ({"model": {"hidden_size": 8, "cond_size": 8}}, [], "cond_size (8) must be smaller than hidden_size"),
        ({}, ["train.epochs=zero"], "key train.epochs"),
        ({}, ["trian.epochs=3"], "did you mean 'train'?"),
        ({}, ["noequals"], "expected KEY=VALUE"),
        ({}, ["optim.clip_norm=.inf"], "key optim.clip_norm: Input should be a finite number"),
        ({"kl": {"beta_max": float("nan")}}, [], "key kl.beta_max: Input should be a finite number"),
        ({}, ["optim.lr_schedule=step"], "key optim.lr_schedule: Input should be 'constant' or 'cosine'"),
    ],
)
def test_errors_are_one_line_with_key_path(raw, overrides, expected):
    with pytest.raises(ConfigError) as info:
        build_config(raw, source="x.yaml", overrides=overrides)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_parse_yaml_values():
    cfg = build_config({}, source="x", overrides=["optim.clip_norm=null", "optim.lr=1e-2", "model.rnn=lstm"])
    assert cfg.optim.clip_norm is None and cfg.optim.lr == 0.01 and cfg.model.rnn == "lstm"


def test_flat_has_every_field():
    flat = ExperimentConfig().flat()
    assert flat["optim.lr"] == ExperimentConfig().optim.lr
    assert "kl.free_bits" in flat and "train.seed" in flat


def test_shipped_specs_load():
    seed = load_config("seed_report.yaml")
    assert (seed.model.rnn, seed.model.hidden_size, seed.model.latent_size, seed.model.cond_size) == \
        ("gru", 256, 32, 8)
    assert (seed.optim.name, seed.optim.lr, seed.optim.clip_norm, seed.train.batch_size) == ("sgd", 0.05, None, 1)
    assert seed.teacher_forcing.start == 0.5 and seed.teacher_forcing.schedule == "constant"
    assert (seed.kl.schedule, seed.kl.beta_start, seed.kl.ramp, seed.kl.unit) == ("monotonic", 0.0, 1000, "epoch")
    base = load_config("baseline.yaml")
    assert base.optim.clip_norm is not None and base.train.batch_size > 1


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="nothere.yaml: file not found"):
        find_spec_file(tmp_path / "nothere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: YAML syntax error"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listed)


# ---------------------------------------------------------------------------------------------------------
# The one YAML loader (load_yaml, StrictLoader): every spec and experiment file goes through it


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


def test_loader_refuses_an_alias_bomb_at_once(tmp_path):
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]  # 10^12 strings expanded
    start = time.perf_counter()
    message = _load_error(tmp_path, ("\n".join(levels) + "\n").encode())
    assert time.perf_counter() - start < 1.0
    assert message.startswith("line 1: YAML anchors and aliases")


def test_loader_refuses_a_file_over_the_size_limit_without_parsing_it(tmp_path):
    data = b"search:\n  optim.lr: {choices: [" + b"0.1, " * (MAX_YAML_BYTES // 5) + b"0.2]}\n"
    start = time.perf_counter()
    message = _load_error(tmp_path, data)
    assert time.perf_counter() - start < 1.0
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


def test_set_values_go_through_the_same_loader():
    assert parse_override("optim.lr=0.5") == ("optim.lr", 0.5)
    assert parse_override("name=[unclosed") == ("name", "[unclosed")  # not YAML: the text itself
    with pytest.raises(ConfigError, match="given twice"):
        parse_override("kl={beta_max: 1, beta_max: 2}")
    with pytest.raises(ConfigError, match="anchors and aliases"):
        parse_override("kl=&a {beta_max: 1}")


def test_cvae_train_set_errors_name_the_file_as_studies_do():
    with pytest.raises(ConfigError, match=r"^x.yaml \(--set\): --set 'optim.lr': expected KEY=VALUE"):
        build_config({}, source="x.yaml", overrides=["optim.lr"])
    with pytest.raises(ConfigError, match=r"^x.yaml: key optim.lrr"):
        build_config({}, source="x.yaml", overrides=["optim.lrr=1"])


def test_every_message_is_one_bounded_line():
    assert str(ConfigError("a\nb   c")) == "a b c"
    assert len(str(ConfigError("x" * 100_000))) == MAX_MESSAGE


def test_check_output_creates_nothing(tmp_path):
    check_output(tmp_path / "new" / "deeper" / "model.pt", flag="--save")
    check_output(tmp_path / "report", flag="--out", folder=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--save .*: is a folder"):
        check_output(tmp_path, flag="--save")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "model.pt", flag="--save")
    with pytest.raises(ConfigError, match="is an existing file, not a folder"):
        check_output(tmp_path / "file", flag="--out", folder=True)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_argument_errors_are_one_line(capsys):
    parser = ArgumentParser(prog="prog")
    parser.add_argument("--workers", type=int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--workers", "abc"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("prog: error: argument --workers: invalid int value: 'abc'")
