"""cvae.configfile: building an experiment from YAML and `--set`, with one-line errors naming the file and key."""

import pytest
import yaml

from cvae.config import PROJECT_ROOT
from cvae.configfile import build_config, find_spec_file, load_config, parse_override
from cvae.errors import ConfigError


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


def test_every_experiment_file_that_is_not_a_study_trains_with_cvae_train():
    """A shipped experiment (no study keys) is read by `python -m cvae.train` itself, which follows no `extends`."""
    experiments = [p for p in sorted((PROJECT_ROOT / "experiments").glob("*.yaml"))
                   if "study" not in yaml.safe_load(p.read_text())]
    assert {"baseline.yaml", "seed_report.yaml", "unseen.yaml"} <= {p.name for p in experiments}
    for path in experiments:
        assert load_config(path).name == path.stem
