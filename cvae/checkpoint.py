"""Saving and loading checkpoints: weights plus the resolved config and figures, loadable with weights_only=True."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from cvae.config import ExperimentConfig
from cvae.errors import UserError, short_repr
from cvae.model import CVAE
from cvae.paths import expand, path_problem


class CheckpointError(UserError):
    """A one-line, user-facing error about a checkpoint file."""


def save_checkpoint(path: str | Path, *, state_dict: dict[str, torch.Tensor], config: ExperimentConfig,
                    metrics: dict[str, float] | None = None, epoch: int | None = None) -> Path:
    """Write weights, the resolved config (as plain data) and the checkpoint's figures to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {name: tensor.detach().cpu() for name, tensor in state_dict.items()}  # loads on any device
    payload = {"state_dict": state_dict, "config": config.model_dump(), "metrics": dict(metrics or {}),
               "epoch": epoch, "format": 1}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu",
                    shown: str | None = None) -> tuple[CVAE, ExperimentConfig, dict[str, Any]]:
    """(model in eval mode on ``device``, its config, the saved payload); a missing or corrupt file is a
    CheckpointError naming ``shown`` (default: the path; a downloaded artifact names its run instead of the temporary
    file). Checkpoints hold CPU tensors (``save_checkpoint``), whatever device trained them."""
    problem = path_problem(str(path))
    if problem is not None:
        raise CheckpointError(f"{short_repr(str(path))}: {problem}")
    path = expand(path)
    shown = shown or str(path)
    if not path.is_file():
        raise CheckpointError(f"{shown}: checkpoint not found")
    try:
        with zipfile.ZipFile(path) as archive:  # torch.load does not check the CRC of what it reads
            if (damaged := archive.testzip()) is not None:
                raise ValueError(f"{damaged} fails its CRC check: the file is damaged")
        with warnings.catch_warnings():  # a foreign pickle makes torch warn on stderr before it refuses
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=device, weights_only=True)
        config = ExperimentConfig.model_validate(payload["config"])
        model = CVAE(config.model).to(device)
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, KeyError, TypeError,
            ValueError, OSError) as exc:  # OSError: a truncated file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{shown}: not a readable cvae checkpoint ({reason[:160]})") from None
    model.eval()
    return model, config, payload
