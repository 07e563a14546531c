"""cvae.train, the command: trains and saves, refuses bad input in one line (CUDA too, before anything is written),
and explains a divergence."""

import os
import subprocess
import sys

import pytest
import torch

from cvae import train
from tests.conftest import ROOT, tiny_config


def test_cli_trains_and_refuses_bad_input(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(tiny_config(train={"epochs": 1}).model_dump_json())
    done = subprocess.run([sys.executable, "-m", "cvae.train", str(spec), "--save", str(tmp_path / "m.pt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "test/bleu4" in done.stdout and (tmp_path / "m.pt").is_file()
    bad = subprocess.run([sys.executable, "-m", "cvae.train", str(spec), "--set", "optim.lr=-1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"cvae.train: error: {spec}: key optim.lr: Input should be greater than 0, got -1"
    missing = subprocess.run([sys.executable, "-m", "cvae.train", str(spec), "--set", "data.test=/no/such.txt"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == f"cvae.train: error: {spec}: key data.test: /no/such.txt: file not found"


def test_cli_explains_a_divergence(tmp_path):
    spec = tmp_path / "boom.yaml"
    spec.write_text(tiny_config(optim={"name": "sgd", "lr": 1e4, "clip_norm": None},
                                train={"epochs": 2}).model_dump_json())
    done = subprocess.run([sys.executable, "-m", "cvae.train", str(spec)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "diverged at step" in out and "first non-finite tensor:" in out
    assert "the steps before it" in out and "grad norm" in out
    assert "optim.clip_norm" in out  # what to try instead


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


def test_cvae_train_refuses_cuda_before_training_or_saving(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.chdir(tmp_path)
    save = tmp_path / "out" / "model.pt"
    code = train.main([str(ROOT / "experiments" / "baseline.yaml"), "--set", "train.device=cuda", "--save", str(save)])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "baseline.yaml" in line and "key train.device" in line
    assert sorted(tmp_path.iterdir()) == []
