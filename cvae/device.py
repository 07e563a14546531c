"""Where a run's model and data live: `train.device` (auto | cpu | cuda | cuda:N) resolved on this machine."""

from __future__ import annotations

import os

import torch

from cvae.errors import ConfigError

DEVICE_KEY = "train.device"


def resolve_device(name: str, *, key: str = DEVICE_KEY) -> torch.device:
    """``auto`` -> the first CUDA GPU when torch sees one, else the CPU; a CUDA device this machine lacks is a
    one-line ConfigError naming the key (raised before anything is trained or written)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:  # a string torch cannot read as a device (`cuda:2147483648`, `gpu`)
        raise ConfigError(f"{_where(key)}: {name!r} is not a device torch knows ({exc}); use auto, cpu, cuda or "
                          "cuda:N") from None
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ConfigError(f"{_where(key)}: {name!r} asked for, but torch sees no CUDA GPU on this machine "
                          f"(torch {torch.__version__}); use auto or cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{_where(key)}: {name!r} asked for, but this machine has "
                          f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return device


def _where(key: str) -> str:
    return key if key.startswith("-") else f"key {key}"


def describe(device: torch.device) -> str:
    """`cpu`, or `cuda:0 (NVIDIA H100 80GB HBM3)`: what a progress board and an MLflow tag show."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    physical = f" = GPU {visible[index]}" if index < len(visible) else ""
    return f"cuda:{index}{physical} ({torch.cuda.get_device_name(index)})"


def visible_gpus() -> list[str]:
    """The GPUs this process may hand to workers, as CUDA_VISIBLE_DEVICES entries (respecting the caller's own
    CUDA_VISIBLE_DEVICES, as a scheduler such as SLURM sets it); [] without CUDA."""
    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given:
        return [entry.strip() for entry in given.split(",") if entry.strip()][:torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def assign_gpus(device: str, n_workers: int, *, gpus: list[str] | None = None) -> list[str | None]:
    """The GPU each of ``n_workers`` worker processes is given (its only visible one), round-robin over this
    machine's GPUs, for a study whose `train.device` is `auto` or `cuda`; None where a worker keeps the machine's
    view (no GPU, `cpu`, or an explicit `cuda:N` that every worker shares)."""
    gpus = visible_gpus() if gpus is None else gpus
    if device not in ("auto", "cuda") or not gpus:
        return [None] * n_workers
    return [gpus[i % len(gpus)] for i in range(n_workers)]
