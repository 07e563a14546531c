"""studies.use: convert and sample with a checkpoint from a file, a run, or a study's best run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from cvae.checkpoint import save_checkpoint
from cvae.config import ExperimentConfig, ModelConfig
from cvae.model import CVAE
from studies import use
from studies.testing import make_trial, write_study
from tests.conftest import ROOT, tiny_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny untrained model saved with cvae.checkpoint."""
    torch.manual_seed(0)
    config = ExperimentConfig(model=ModelConfig(hidden_size=16, latent_size=4, cond_size=4, embed_size=8,
                                                max_length=10))
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    return save_checkpoint(path, state_dict=CVAE(config.model).state_dict(), config=config)


@pytest.fixture(scope="module")
def store(tmp_path_factory, checkpoint):
    """A study of two seeds; the better one holds the checkpoint, the other has none."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    trials = [make_trial(number=seed, overrides={}, seed=seed, status="works", epochs=2) for seed in (0, 1)]
    write_study(tracking_uri=uri, study="tiny", trials=trials, artifact_location=root / "artifacts")
    ranked = sorted(trials, key=lambda t: t.best["best/val/bleu4"] + t.best["best/val/gaussian"], reverse=True)
    MlflowClient(uri).log_artifact(ranked[0].run_id, str(checkpoint), artifact_path="checkpoint")
    return {"uri": uri, "with": ranked[0].run_id, "without": ranked[1].run_id}


def _run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    code = use.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_convert_prints_one_word_per_input(checkpoint, capsys):
    code, out, err = _run(capsys, "convert", "abandon", "go", "--from", "sp", "--to", "p",
                          "--checkpoint", str(checkpoint))
    assert code == 0 and err == []
    assert len(out) == 2 and all(w == use.EMPTY or w.isalpha() and w.islower() for w in out)
    model, _ = use.load_model(tracking_uri="unused", checkpoint=checkpoint)
    expected = use.convert_words(model=model, words=["abandon", "go"], source="sp", target="p")
    assert out == [w or use.EMPTY for w in expected]


def test_sample_prints_four_forms_per_draw_reproducibly(checkpoint, capsys):
    code, out, _ = _run(capsys, "sample", "5", "--seed", "3", "--checkpoint", str(checkpoint))
    assert code == 0 and len(out) == 5
    assert all(len(line.split(" ")) == 4 for line in out)
    assert _run(capsys, "sample", "5", "--seed", "3", "--checkpoint", str(checkpoint))[1] == out


def test_run_and_study_give_the_same_model_as_the_file(checkpoint, store, capsys):
    words = ("convert", "walk", "--from", "sp", "--to", "pg")
    _, by_file, _ = _run(capsys, *words, "--checkpoint", str(checkpoint))
    code, by_run, err = _run(capsys, *words, "--run", store["with"], "--tracking-uri", store["uri"])
    assert code == 0 and err == [] and by_run == by_file
    code, by_study, err = _run(capsys, *words, "--study", "tiny", "--tracking-uri", store["uri"])
    assert code == 0 and err == [] and by_study == by_file


@pytest.mark.parametrize(("argv", "message"), [
    (("convert", "Walk", "--from", "sp", "--to", "p"), "word 'Walk' has character 'W'"),
    (("convert", "walk2", "--from", "sp", "--to", "p"), "has character '2'"),
    (("sample", "2", "--checkpoint", "/nonexistent/model.pt"), "checkpoint not found"),
])
def test_bad_input_is_one_line_exit_2(argv, message, checkpoint, capsys):
    if "--checkpoint" not in argv:
        argv = (*argv, "--checkpoint", str(checkpoint))
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == [] and len(err) == 1 and message in err[0]


def test_run_without_checkpoint_or_unknown_study_exit_2(store, capsys):
    code, _, err = _run(capsys, "sample", "1", "--run", store["without"], "--tracking-uri", store["uri"])
    assert code == 2 and len(err) == 1 and "no checkpoint/model.pt artifact" in err[0]
    code, _, err = _run(capsys, "sample", "1", "--study", "tinyy", "--tracking-uri", store["uri"])
    assert code == 2 and len(err) == 1 and "did you mean 'tiny'" in err[0]


def test_corrupt_checkpoint_from_the_command_line(checkpoint, tmp_path):
    corrupt = tmp_path / "model.pt"
    corrupt.write_bytes(checkpoint.read_bytes()[:200])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "studies.use", "sample", "2", "--checkpoint", str(corrupt)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "not a readable cvae checkpoint" in done.stderr


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


def test_studies_use_refuses_cuda_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tiny_config()
    path = save_checkpoint(tmp_path / "model.pt", state_dict=CVAE(config.model).state_dict(), config=config)
    code = use.main(["sample", "2", "--checkpoint", str(path), "--device", "cuda"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("studies.use: error: --device: 'cuda' asked for")
