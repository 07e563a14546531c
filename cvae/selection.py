"""Checkpoint choice (the healthy evaluated epoch maximising ``train.select``) and the collapse detector that
stops a run whose latent collapsed or overflowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cvae.config import ExperimentConfig
from cvae.model import CVAE
from cvae.schedules import kl_warmup_epochs
from cvae.scoring import Health, checkpoint_values, epoch_health

if TYPE_CHECKING:
    from cvae.trainer import EpochRecord


def selection_score(select: str, metrics: dict[str, float], epoch: int) -> float:
    """The checkpoint criterion's value (higher is better), from the `val/*` figures (``cvae.scoring``)."""
    if select == "last":
        return float(epoch)
    return checkpoint_values(metrics, objective=select)[0]


@dataclass
class Checkpoint:
    """The best evaluated epoch so far: its criterion value, figures, weights and samples."""

    score: float
    epoch: int
    metrics: dict[str, float]
    state: dict[str, torch.Tensor]
    samples: dict[str, Any]


class Selection:
    """Checkpoint choice: the epoch maximising the criterion among healthy epochs (``cvae.scoring.epoch_health``);
    an epoch whose posterior collapsed or overflowed is chosen only when no healthy epoch exists."""

    def __init__(self, select: str) -> None:
        self.select = select
        self.best: dict[bool, Checkpoint | None] = {True: None, False: None}  # healthy? -> best

    def offer(self, record: EpochRecord, model: CVAE, samples: dict[str, Any]) -> None:
        healthy = self.select == "last" or epoch_health(record.metrics) == Health.OK  # `last` means the last
        score = selection_score(self.select, record.metrics, record.epoch)
        current = self.best[healthy]
        if current is None or score > current.score:
            self.best[healthy] = Checkpoint(score=score, epoch=record.epoch, metrics=dict(record.metrics),
                                            state={name: tensor.detach().to("cpu", copy=True)
                                                   for name, tensor in model.state_dict().items()},
                                            samples=samples)

    @property
    def chosen(self) -> Checkpoint | None:
        return self.best[True] or self.best[False]


class CollapseDetector:
    """Stops a run after ``patience`` consecutive evaluated epochs past the KL warm-up whose latent collapsed, or
    whose latent overflowed (any epoch): -> the status (`collapsed` / `unstable`) to stop with, else None."""

    def __init__(self, config: ExperimentConfig, *, steps_per_epoch: int) -> None:
        self.patience = config.train.collapse_patience
        self.warmup = kl_warmup_epochs(config.kl, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch)
        self.streak: tuple[str, int] = (Health.OK, 0)

    def __call__(self, record: EpochRecord) -> str | None:
        if self.patience is None:
            return None
        health = epoch_health(record.metrics)
        if health == Health.COLLAPSED and record.epoch <= self.warmup:
            health = Health.OK  # a posterior may sit near the prior while the KL weight is still ramping
        kind, count = self.streak
        self.streak = (health, count + 1 if health == kind else 1)
        return health if health != Health.OK and self.streak[1] >= self.patience else None
