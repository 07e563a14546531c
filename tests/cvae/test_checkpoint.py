"""cvae.checkpoint: a saved model loads back as it was, on the device asked; a damaged file is one clear error."""

import pytest
import torch

from cvae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cvae.model import CVAE, convert
from cvae.trainer import fit
from tests.conftest import tiny_config


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    cfg = tiny_config(train={"epochs": 1})
    result = fit(cfg)
    path = save_checkpoint(tmp_path / "model.pt", state_dict=result.state_dict, config=cfg,
                           metrics=result.metrics, epoch=result.best_epoch)
    model, loaded, payload = load_checkpoint(path)
    assert loaded == cfg and payload["epoch"] == 1
    from cvae.data import Data
    data = Data.load(cfg)
    assert convert(model, data.test) == [s["prediction"] for s in result.samples["test"]]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.pt: not a readable cvae checkpoint"):
        load_checkpoint(path)


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
