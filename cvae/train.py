"""Training: ``fit(config, callbacks=...) -> TrainResult``, with divergence detection and checkpoint choice.

A run whose loss or gradients become non-finite stops at once and returns status ``diverged`` with the step
and the cause. Every ``eval_every`` epochs the callbacks get an EpochRecord with namespaced figures.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cvae.config import ExperimentConfig
from cvae.data import (PAD, TENSES, Pair, make_batch, read_pairs, read_train, training_examples,
                       validation_pairs)
from cvae.metrics import (active_units, gaussian_generations, gaussian_score, gaussian_unique, kl_per_dim,
                          mean_bleu4, mutual_information)
from cvae.model import CVAE
from cvae.schedules import kl_weight, lr_factor, teacher_forcing_ratio

MI_BATCH = 512
"""Words (a fixed, seeded subset) on which mutual information is estimated."""
N_SAMPLES = 20
"""Gaussian generations kept in a result's samples."""
BUCKET_POOL = 32
"""With bucketing, each run of this many batches' worth of shuffled words is sorted by length before batching."""


@dataclass
class EpochRecord:
    """What the callbacks see after an evaluated epoch (1-based ``epoch``; ``step`` = optimizer steps so far)."""

    epoch: int
    step: int
    metrics: dict[str, float]
    kl_per_dim: list[float] = field(default_factory=list)


Callback = Callable[[EpochRecord], bool | None]
"""Called after every evaluated epoch; returning True stops training (status ``stopped``)."""
Progress = Callable[[int, int, int], None]
"""progress(epoch (0-based), steps done in the epoch, steps per epoch): called about 50 times an epoch."""


@dataclass
class TrainResult:
    """Outcome of one run; ``metrics`` are the figures of the chosen checkpoint (``best_epoch``)."""

    status: str  # "ok" | "diverged" | "stopped"
    config: ExperimentConfig
    best_epoch: int | None
    metrics: dict[str, float]
    history: list[EpochRecord]
    state_dict: dict[str, torch.Tensor] | None
    samples: dict[str, Any]
    steps: int
    wall_time_s: float
    diverged_step: int | None = None
    divergence_cause: str | None = None
    grad_norm_max: float | None = None  # largest finite pre-clip global grad norm of the run, every step counted
    epochs_done: int = 0  # epochs trained to the end (a diverged epoch does not count)


@dataclass
class Data:
    """Everything a run reads from disk, loaded once."""

    rows: list[tuple[str, ...]]
    words: list[str]
    tenses: torch.Tensor  # (N,)
    test: list[Pair]
    heldout: list[Pair] | None
    val: list[Pair]

    @classmethod
    def load(cls, config: ExperimentConfig) -> "Data":
        cfg = config.data
        rows = read_train(cfg.resolve("train"))
        if cfg.max_verbs is not None:
            rows = rows[: cfg.max_verbs]
        words, tenses = training_examples(rows)
        heldout_path = cfg.resolve("heldout")
        return cls(rows=rows, words=words, tenses=torch.tensor(tenses), test=read_pairs(cfg.resolve("test")),
                   heldout=read_pairs(heldout_path) if heldout_path is not None else None,
                   val=validation_pairs(rows, n=cfg.val_pairs, seed=config.train.eval_seed))


class _Diverged(Exception):
    def __init__(self, step: int, cause: str) -> None:
        super().__init__(cause)
        self.step, self.cause = step, cause


def make_optimizer(config: ExperimentConfig, params) -> torch.optim.Optimizer:
    cfg = config.optim
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def convert(model: CVAE, pairs: Sequence[Pair]) -> list[str]:
    """Greedy conversions decoded from the encoder's mean (no sampling)."""
    batch = make_batch([p.source for p in pairs])
    mu, _ = model.encode(batch.chars, batch.lengths, torch.tensor([p.src for p in pairs]))
    return model.generate(mu, torch.tensor([p.tgt for p in pairs]))


def loss_terms(model: CVAE, chars, lengths, targets, tense, target_tense, *, teacher_forcing: bool, beta: float,
               free_bits: float):
    """(loss, reconstruction, KL) for one batch; reconstruction and KL are per word, summed over chars/dims."""
    logits, mu, logvar = model(chars, lengths, targets, tense, target_tense=target_tense,
                               teacher_forcing=teacher_forcing)  # (B, T+1, V), (B, L)
    recon = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD,
                                        reduction="sum") / chars.shape[0]
    kl_dims = kl_per_dim(mu, logvar)  # (L,)
    kl = kl_dims.sum()
    kl_term = kl_dims.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return recon + beta * kl_term, recon, kl


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class Trainer:
    """One run's state; ``fit`` is the public entry point."""

    def __init__(self, config: ExperimentConfig, data: Data) -> None:
        self.config, self.data = config, data
        self.model = CVAE(config.model)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.groups = {"encoder": list(self.model.encoder.parameters()) + list(self.model.cond.parameters()),
                       "decoder": list(self.model.decoder.parameters())}
        self.params = [p for group in self.groups.values() for p in group]
        whole = make_batch(data.words)
        self.chars, self.lengths, self.targets = whole.chars, whole.lengths, whole.targets
        self.step = 0
        self.grad_norm_max: float | None = None
        gen = torch.Generator().manual_seed(config.train.eval_seed)
        self.mi_index = torch.randperm(len(data.words), generator=gen)[:MI_BATCH]

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.words) / self.config.train.batch_size)

    def batches(self) -> list[torch.Tensor]:
        """This epoch's batches of word indices: shuffled; with bucketing, words of similar length together."""
        cfg = self.config.train
        order = torch.randperm(len(self.data.words))
        if not cfg.bucket or cfg.batch_size == 1:
            return list(order.split(cfg.batch_size))
        pool = cfg.batch_size * BUCKET_POOL
        batches: list[torch.Tensor] = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            batches.extend(chunk[torch.argsort(self.lengths[chunk], stable=True)].split(cfg.batch_size))
        return [batches[i] for i in torch.randperm(len(batches)).tolist()]

    def target_indices(self, idx: torch.Tensor) -> torch.Tensor:
        """Words the decoder must produce for the encoded words ``idx``: themselves, or with ``cross_tense``
        the same verb's form in a tense drawn uniformly (words of row r sit at 4r .. 4r+3)."""
        if not self.config.train.cross_tense:
            return idx
        return idx - self.data.tenses[idx] + torch.randint(len(TENSES), idx.shape)

    def train_epoch(self, epoch: int, progress: Progress | None = None) -> dict[str, float]:
        cfg = self.config
        self.model.train()
        tf = teacher_forcing_ratio(cfg.teacher_forcing, epoch=epoch)
        totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "kl_weight": 0.0}
        norms: dict[str, list[float]] = {"global": [], "encoder": [], "decoder": []}
        started = time.perf_counter()
        n_steps = 0
        every = max(1, self.steps_per_epoch // 50)
        for idx in self.batches():
            lengths = self.lengths[idx]
            width = int(lengths.max())
            beta = kl_weight(cfg.kl, epoch=epoch, step=self.step, epochs=cfg.train.epochs,
                             steps_per_epoch=self.steps_per_epoch)
            forced = bool(torch.rand(()) < tf)  # teacher forcing is decided once per step, as in the seed
            target_idx = self.target_indices(idx)
            target_width = int(self.lengths[target_idx].max()) + 1
            loss, recon, kl = loss_terms(self.model, self.chars[idx, :width], lengths,
                                         self.targets[target_idx, :target_width], self.data.tenses[idx],
                                         self.data.tenses[target_idx], teacher_forcing=forced, beta=beta,
                                         free_bits=cfg.kl.free_bits)
            self.step += 1
            if not torch.isfinite(loss):
                raise _Diverged(self.step, f"non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            module_norms = {name: _grad_norm(group) for name, group in self.groups.items()}
            total = torch.linalg.vector_norm(torch.stack(list(module_norms.values())))
            if not torch.isfinite(total):
                bad = [name for name, v in module_norms.items() if not torch.isfinite(v)]
                raise _Diverged(self.step, f"non-finite gradient in {'+'.join(bad)} at epoch {epoch + 1}")
            if cfg.optim.clip_norm is not None:
                torch.nn.utils.clip_grads_with_norm_(self.params, cfg.optim.clip_norm, total)
            factor = lr_factor(cfg.optim, step=self.step - 1, total_steps=cfg.train.epochs * self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.optim.lr * factor
            self.optimizer.step()
            norms["global"].append(float(total))
            self.grad_norm_max = max(norms["global"][-1], self.grad_norm_max or 0.0)
            for name, value in module_norms.items():
                norms[name].append(float(value))
            totals["loss"] += float(loss.detach())
            totals["recon"] += float(recon.detach())
            totals["kl"] += float(kl.detach())
            totals["kl_weight"] += beta
            n_steps += 1
            if progress is not None and n_steps % every == 0:
                progress(epoch, n_steps, self.steps_per_epoch)
        elapsed = time.perf_counter() - started
        record = {f"train/{k}": v / n_steps for k, v in totals.items()}
        record["train/tf_ratio"] = tf
        record["train/lr"] = self.optimizer.param_groups[0]["lr"]
        record["train/grad_norm_mean"] = sum(norms["global"]) / n_steps
        record["train/grad_norm_max"] = max(norms["global"])
        for name in ("encoder", "decoder"):
            record[f"train/grad_norm_{name}_mean"] = sum(norms[name]) / n_steps
            record[f"train/grad_norm_{name}_max"] = max(norms[name])
        record["train/words_per_s"] = len(self.data.words) / elapsed
        record["train/epoch_time_s"] = elapsed
        return record

    def selection_figures(self, reported: dict[str, float]) -> dict[str, float]:
        """Figures the checkpoint is chosen on, kept apart from the reported ones: BLEU-4 on the validation
        pairs, Gaussian score on another noise draw. Without validation pairs the reported figures are used."""
        cfg = self.config
        if not self.data.val:
            return {"select/bleu4": reported["val/bleu4"], "select/gaussian": reported["val/gaussian"]}
        predictions = convert(self.model, self.data.val)
        generations = gaussian_generations(self.model.generate, n=cfg.train.gaussian_samples,
                                           latent_size=cfg.model.latent_size, seed=cfg.train.eval_seed + 1)
        return {"select/bleu4": mean_bleu4(predictions, [p.target for p in self.data.val]),
                "select/gaussian": gaussian_score(generations, self.data.rows)}

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], list[float], dict[str, Any]]:
        """Test/heldout BLEU-4, Gaussian score and latent diagnostics of the current weights."""
        cfg = self.config
        self.model.eval()
        mu, logvar = self.model.encode(self.chars, self.lengths, self.data.tenses)  # (N, L)
        dims = kl_per_dim(mu, logvar)
        predictions = convert(self.model, self.data.test)
        generations = gaussian_generations(self.model.generate, n=cfg.train.gaussian_samples,
                                           latent_size=cfg.model.latent_size, seed=cfg.train.eval_seed)
        metrics = {
            "val/bleu4": mean_bleu4(predictions, [p.target for p in self.data.test]),
            "val/gaussian": gaussian_score(generations, self.data.rows),
            "val/gaussian_unique": gaussian_unique(generations, self.data.rows),
            "val/kl": float(dims.sum()),
            "val/active_units": float(active_units(mu)),
            "val/mutual_info": mutual_information(mu[self.mi_index], logvar[self.mi_index], seed=cfg.train.eval_seed),
        }
        if self.data.heldout:
            heldout = convert(self.model, self.data.heldout)
            metrics["val/heldout_bleu4"] = mean_bleu4(heldout, [p.target for p in self.data.heldout])
        metrics.update(self.selection_figures(metrics))
        samples = {
            "test": [{"source": p.source, "target": p.target, "prediction": pred, "from": p.src, "to": p.tgt}
                     for p, pred in zip(self.data.test, predictions)],
            "gaussian": [list(g) for g in generations[:N_SAMPLES]],
        }
        return metrics, dims.tolist(), samples


def selection_score(select: str, metrics: dict[str, float], epoch: int) -> float:
    """The checkpoint criterion's value (higher is better), from the `select/*` figures."""
    if select == "last":
        return float(epoch)
    bleu, gaussian = metrics["select/bleu4"], metrics["select/gaussian"]
    return {"bleu4": bleu, "gaussian": gaussian, "bleu4+gaussian": bleu + gaussian,
            "min_of_both": min(bleu, gaussian)}[select]


def fit(config: ExperimentConfig, *, callbacks: Sequence[Callback] = (), data: Data | None = None,
        progress: Progress | None = None) -> TrainResult:
    """Train one experiment; returns the chosen checkpoint's figures and weights (never raises on divergence).

    ``data`` defaults to the files named in ``config.data``; ``progress`` is told how far each epoch has got.
    """
    torch.set_num_threads(config.train.num_threads)
    seed_everything(config.train.seed)
    data = data or Data.load(config)
    trainer = Trainer(config, data)
    cfg = config.train
    history: list[EpochRecord] = []
    best = {"score": -math.inf, "epoch": None, "metrics": {}, "state": None, "samples": {}}
    status, diverged_step, cause = "ok", None, None
    epochs_done = 0
    started = time.perf_counter()
    for epoch in range(cfg.epochs):
        try:
            train_figures = trainer.train_epoch(epoch, progress)
        except _Diverged as exc:
            status, diverged_step, cause = "diverged", exc.step, str(exc)
            break
        epochs_done = epoch + 1
        if (epoch + 1) % cfg.eval_every and epoch + 1 != cfg.epochs:
            continue
        val_figures, dims, samples = trainer.evaluate()
        record = EpochRecord(epoch=epoch + 1, step=trainer.step, metrics={**train_figures, **val_figures},
                             kl_per_dim=dims)
        history.append(record)
        score = selection_score(cfg.select, val_figures, epoch)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch + 1, "metrics": dict(record.metrics), "samples": samples,
                    "state": copy.deepcopy(trainer.model.state_dict())}
        if any(callback(record) for callback in callbacks):
            status = "stopped"
            break
    return TrainResult(status=status, config=config, best_epoch=best["epoch"], metrics=best["metrics"],
                       history=history, state_dict=best["state"], samples=best["samples"], steps=trainer.step,
                       wall_time_s=time.perf_counter() - started, diverged_step=diverged_step,
                       divergence_cause=cause, grad_norm_max=trainer.grad_norm_max, epochs_done=epochs_done)


if __name__ == "__main__":
    from cvae.cli import main

    raise SystemExit(main())
