"""Device plumbing (`train.device`), checked on the CPU: auto resolves to the CPU here, CUDA is refused before
anything is written, checkpoints load on another device, and study workers are spread over GPUs round-robin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cvae import device, train
from cvae.checkpoint import load_checkpoint, save_checkpoint
from cvae.errors import ConfigError
from cvae.device import assign_gpus, resolve_device
from cvae.model import CVAE
from cvae.trainer import fit
from studies import run, use
from tests.conftest import ROOT, tiny_config

NO_CUDA = not torch.cuda.is_available()


def test_auto_trains_on_the_cpu_without_a_gpu():
    if not NO_CUDA:
        pytest.skip("this machine has a GPU: auto means CUDA here")
    assert resolve_device("auto") == torch.device("cpu")
    result = fit(tiny_config(train={"epochs": 1}))
    assert result.device == "cpu"
    assert all(t.device.type == "cpu" for t in result.state_dict.values())


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_one_line_naming_the_key(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^key train\.device: '" + name + "' asked for, but torch sees no CUDA"):
        resolve_device(name)


def test_a_gpu_index_beyond_the_machine_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"'cuda:2' asked for, but this machine has 2 CUDA GPU\(s\)"):
        resolve_device("cuda:2")


def test_an_unknown_device_name_fails_validation():
    with pytest.raises(ConfigError, match=r"key train\.device"):
        tiny_config(train={"device": "gpu"})


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


def test_checkpoint_holds_cpu_tensors_and_loads_on_the_device_asked(tmp_path):
    config = tiny_config()
    model = CVAE(config.model)
    path = save_checkpoint(tmp_path / "model.pt", state_dict=model.state_dict(), config=config)
    payload = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values())
    loaded, _, _ = load_checkpoint(path, device="meta")  # another device than the one that saved it
    assert {p.device.type for p in loaded.parameters()} == {"meta"}
    on_cpu, _, _ = load_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(on_cpu.state_dict().values(), model.state_dict().values()))


def test_studies_use_refuses_cuda_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tiny_config()
    path = save_checkpoint(tmp_path / "model.pt", state_dict=CVAE(config.model).state_dict(), config=config)
    code = use.main(["sample", "2", "--checkpoint", str(path), "--device", "cuda"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("studies.use: error: --device: 'cuda' asked for")


def test_workers_are_spread_over_gpus_round_robin():
    assert assign_gpus("auto", 5, gpus=["0", "1"]) == ["0", "1", "0", "1", "0"]
    assert assign_gpus("cuda", 2, gpus=["2", "3", "5"]) == ["2", "3"]
    assert assign_gpus("auto", 2, gpus=[]) == [None, None]  # no GPU: every worker on the CPU
    assert assign_gpus("cpu", 2, gpus=["0", "1"]) == [None, None]
    assert assign_gpus("cuda:1", 3, gpus=["0", "1"]) == [None, None, None]  # pinned: all share the machine's view


def test_visible_gpus_respect_the_schedulers_mask(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")
    assert device.visible_gpus() == ["4", "7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert device.visible_gpus() == ["0", "1"]


def test_training_twice_on_the_cpu_is_reproducible():
    first, second = fit(tiny_config(train={"epochs": 2})), fit(tiny_config(train={"epochs": 2}))
    timings = ("train/epoch_time_s", "train/words_per_s")
    assert {k: v for k, v in first.metrics.items() if k not in timings} == \
        {k: v for k, v in second.metrics.items() if k not in timings}
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)


def test_trial_runs_are_tagged_with_their_device(tmp_path: Path):
    from mlflow import MlflowClient

    from studies import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("devices")
    parent = client.create_run(experiment).info.run_id
    study_run = tracking.StudyRun(tracking_uri=uri, experiment_id=experiment, parent_run_id=parent, study="devices")
    run_id = tracking.start_trial(client, study_run=study_run, number=0, config=tiny_config(), key="k", device="cpu")
    assert client.get_run(run_id).data.tags["cvae.device"] == "cpu"
