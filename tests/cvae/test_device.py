"""Device plumbing (`train.device`), checked on the CPU: auto resolves to the CPU here, CUDA is refused in one
line naming the key, a run is reproducible on the CPU, and study workers are spread over GPUs round-robin."""

from __future__ import annotations

import pytest
import torch

from cvae import device
from cvae.device import assign_gpus, resolve_device
from cvae.errors import ConfigError
from cvae.trainer import fit
from tests.conftest import tiny_config

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
