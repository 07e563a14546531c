"""The loss of one batch (reconstruction + beta * KL with free bits), its non-finite check, the gradient norm,
and the optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cvae.config import ExperimentConfig
from cvae.data import PAD
from cvae.metrics import kl_per_dim
from cvae.model import CVAE


def first_nonfinite(named: Sequence[tuple[str, torch.Tensor | None]]) -> str | None:
    """Name of the first tensor of ``named`` holding a non-finite value (None if all are finite)."""
    for name, tensor in named:
        if tensor is not None and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def make_optimizer(config: ExperimentConfig, params) -> torch.optim.Optimizer:
    cfg = config.optim
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@dataclass
class Terms:
    """One batch's loss and what it is made of (reconstruction and KL per word, summed over chars/dims)."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    mu: torch.Tensor  # (B, L)
    logvar: torch.Tensor  # (B, L)
    logits: torch.Tensor  # (B, T+1, V)

    def first_nonfinite(self) -> str | None:
        """The first of the forward pass's tensors, in computation order, holding a non-finite value."""
        return first_nonfinite([("encoder mean", self.mu), ("encoder log-variance", self.logvar),
                                 ("decoder logits", self.logits), ("reconstruction loss", self.recon),
                                 ("KL", self.kl), ("loss", self.loss)])


def reconstruction(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, T+1, V) against ``targets`` (B, T+1), summed over characters, per word."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD,
                                       reduction="sum") / targets.shape[0]


def loss_terms(model: CVAE, chars, lengths, targets, tense, target_tense, *, teacher_forcing: bool, beta: float,
               free_bits: float, read_source: bool = False) -> Terms:
    """The loss of one batch: reconstruction + beta * KL (each dimension's KL floored at ``free_bits``); with
    ``read_source`` no row is decoded from z alone."""
    logits, mu, logvar = model(chars, lengths, targets, tense, target_tense=target_tense,
                               teacher_forcing=teacher_forcing, read_source=read_source)  # (B, T+1, V), (B, L)
    recon = reconstruction(logits, targets)
    kl_dims = kl_per_dim(mu, logvar)  # (L,)
    kl = kl_dims.sum()
    kl_term = kl_dims.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return Terms(loss=recon + beta * kl_term, recon=recon, kl=kl, mu=mu, logvar=logvar, logits=logits)


def grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
