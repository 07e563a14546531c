"""studies.run, in-process: a bad device is refused before anything is written; `--create-only` needs no GPU."""

from __future__ import annotations

import pytest
import torch

from studies import run
from tests.conftest import ROOT


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


def test_studies_run_refuses_cuda_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(run, "execute", lambda **kwargs: pytest.fail("the study would have run"))
    monkeypatch.chdir(tmp_path)
    code = run.main([str(ROOT / "experiments" / "smoke.yaml"), "--set", "train.device=cuda"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "smoke.yaml" in line and "key train.device" in line
    assert sorted(tmp_path.iterdir()) == []


def test_studies_run_create_only_does_not_need_the_gpu(tmp_path, monkeypatch):
    """A login node without a GPU creates the study that GPU nodes will train (README: SLURM)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    called = {}
    monkeypatch.setattr(run, "execute", lambda **kwargs: called.update(kwargs) or 0)
    monkeypatch.chdir(tmp_path)
    assert run.main([str(ROOT / "experiments" / "smoke.yaml"), "--set", "train.device=cuda", "--create-only"]) == 0
    assert called["create_only"] is True
