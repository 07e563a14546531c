"""Training: ``fit(config, callbacks=...) -> TrainResult``, with divergence detection and checkpoint choice.

A run whose loss or gradients become non-finite stops at once and returns status ``diverged`` with the step
and the cause. Every ``eval_every`` epochs the callbacks get an EpochRecord with namespaced figures.
"""

from __future__ import annotations

import collections
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch

from cvae import names
from cvae.config import ExperimentConfig
from cvae.data import TENSES, Data, make_batch
from cvae.device import describe, resolve_device
from cvae.evaluation import evaluate
from cvae.hallucination import Hallucinator
from cvae.losses import first_nonfinite, grad_norm, loss_terms, make_optimizer, reconstruction
from cvae.model import CVAE
from cvae.rules import RuleBaseline
from cvae.schedules import kl_weight, lr_factor, teacher_forcing_ratio
from cvae.scoring import Health, Status
from cvae.selection import CollapseDetector, Selection

MI_BATCH = 512
"""Words (a fixed, seeded subset) on which mutual information is estimated."""


BUCKET_POOL = 32
"""With bucketing, each run of this many batches' worth of shuffled words is sorted by length before batching."""


TRACE_HEAD = 200
"""Optimizer steps at the start of every run whose per-step figures are kept (the explosion plot's clipped twin)."""


TRACE_TAIL = 5000
"""Latest optimizer steps kept for a run that diverges: its trace up to the non-finite step (from the start when
it diverged within TRACE_HEAD + TRACE_TAIL steps)."""


TRACE_KEYS = ("loss", "kl", "grad_norm", "grad_norm_encoder", "grad_norm_decoder", "logvar_absmax")
"""Per-step figures of a trace: loss and KL of the batch, pre-clip gradient norms, largest |log-variance|."""


class Ending(StrEnum):
    """How ``fit`` ended: trained on to the last epoch, diverged, stopped by a callback, or stopped by the collapse
    detector (collapsed or unstable)."""

    OK = Health.OK.value
    DIVERGED = Status.DIVERGED.value
    STOPPED = "stopped"
    COLLAPSED = Status.COLLAPSED.value
    UNSTABLE = Status.UNSTABLE.value


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

    status: Ending
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
    stopped_epoch: int | None = None  # the epoch at which the collapse detector stopped the run
    trace: list[dict[str, float]] = field(default_factory=list)  # per-step figures (TRACE_KEYS and "step")
    nonfinite: str | None = None  # the first tensor found non-finite in a diverged run
    device: str = "cpu"  # where it trained (``cvae.device.describe``)
    rule_heldout_bleu4: float | None = None  # the rule baseline's heldout BLEU-4 on the same data (cvae.rules)


class _Diverged(Exception):
    def __init__(self, step: int, cause: str, tensor: str | None = None) -> None:
        super().__init__(cause)
        self.step, self.cause, self.tensor = step, cause, tensor


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """One run's state; ``fit`` is the public entry point."""

    def __init__(self, config: ExperimentConfig, data: Data) -> None:
        self.config, self.data = config, data
        self.device = resolve_device(config.train.device)
        self.model = CVAE(config.model).to(self.device)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.groups = {"encoder": list(self.model.encoder.parameters()) + list(self.model.cond.parameters()),
                       "decoder": list(self.model.decoder.parameters())}
        self.params = [p for group in self.groups.values() for p in group]
        whole = make_batch(data.words)
        # the words live on the device for the whole run (batches are gathered there); lengths and tenses stay on
        # the CPU too, for batching, widths and packing without a device round trip
        self.lengths = whole.lengths
        self.chars, self.targets = whole.chars.to(self.device), whole.targets.to(self.device)
        self.tenses = data.tenses.to(self.device)
        self.step = 0
        self.hallucinator = Hallucinator(data.trained if config.train.hallucinate > 0
                                         and config.model.decoder != "lab" else [])
        self.rng = random.Random(config.train.seed)  # the hallucinated verbs' draws
        self.last_codes: torch.Tensor | None = None  # (N, L) each word's posterior mean at its latest step
        self.grad_norm_max: float | None = None
        self.trace_head: list[dict[str, float]] = []
        self.trace_tail: collections.deque[dict[str, float]] = collections.deque(maxlen=TRACE_TAIL)
        gen = torch.Generator().manual_seed(config.train.eval_seed)
        self.mi_index = torch.randperm(len(data.words), generator=gen)[:MI_BATCH].to(self.device)

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
        return self.drawn_form(idx) if self.config.train.cross_tense else idx

    def drawn_form(self, idx: torch.Tensor) -> torch.Tensor:
        """The same verbs' forms in a tense drawn uniformly for each (words of row r sit at 4r .. 4r+3)."""
        return idx - self.data.tenses[idx] + torch.randint(len(TENSES), idx.shape)

    def train_epoch(self, epoch: int, progress: Progress | None = None) -> dict[str, float]:
        """One pass over the training words (``_step`` per batch) -> the epoch's ``train/*`` figures."""
        cfg = self.config
        self.model.train()
        tf = teacher_forcing_ratio(cfg.teacher_forcing, epoch=epoch)
        steps: list[dict[str, float]] = []
        started = time.perf_counter()
        every = max(1, self.steps_per_epoch // 50)
        codes = None
        if cfg.train.prior_fill > 0:  # the posterior means of the last epoch's steps (a pass of its own at first)
            codes = self.codes() if self.last_codes is None else self.last_codes
            self.last_codes = codes.clone()  # this epoch's steps write into the copy
        for idx in self.batches():
            steps.append(self._step(idx, epoch=epoch, tf=tf, codes=codes))
            if progress is not None and len(steps) % every == 0:
                progress(epoch, len(steps), self.steps_per_epoch)
        elapsed = time.perf_counter() - started

        def mean(key: str) -> float:
            return sum(step[key] for step in steps) / len(steps)

        record = {names.TRAIN_LOSS: mean("loss"), names.TRAIN_RECON: mean("recon"), names.TRAIN_KL: mean("kl"),
                  names.TRAIN_KL_WEIGHT: mean("kl_weight"), names.TRAIN_TF_RATIO: tf,
                  names.TRAIN_LR: self.optimizer.param_groups[0]["lr"],
                  names.TRAIN_GRAD_NORM_MEAN: mean("grad_norm"),
                  names.TRAIN_GRAD_NORM_MAX: max(step["grad_norm"] for step in steps)}
        for name in names.GRAD_MODULES:
            record[names.module_grad_norm(name, "mean")] = mean(f"grad_norm_{name}")
            record[names.module_grad_norm(name, "max")] = max(step[f"grad_norm_{name}"] for step in steps)
        record[names.TRAIN_WORDS_PER_S] = len(self.data.words) / elapsed
        record[names.TRAIN_EPOCH_TIME] = elapsed
        return record

    def _step(self, idx: torch.Tensor, *, epoch: int, tf: float, codes: torch.Tensor | None) -> dict[str, float]:
        """One optimizer step on the words ``idx``: loss, divergence checks, backward, clipping, learning rate,
        update; -> its figures (loss, recon, kl, kl_weight, pre-clip gradient norms). Raises _Diverged when the
        loss or a gradient is non-finite, after keeping the step in the trace."""
        cfg = self.config
        lengths = self.lengths[idx]
        beta = kl_weight(cfg.kl, epoch=epoch, step=self.step, epochs=cfg.train.epochs,
                         steps_per_epoch=self.steps_per_epoch)
        forced = bool(torch.rand(()) < tf)  # teacher forcing is decided once per step, as in the seed
        target_idx = self.target_indices(idx)
        width, target_width = int(lengths.max()), int(self.lengths[target_idx].max()) + 1
        src, tgt = idx.to(self.device), target_idx.to(self.device)
        terms = loss_terms(self.model, self.chars[src, :width], lengths, self.targets[tgt, :target_width],
                           self.tenses[src], self.tenses[tgt], teacher_forcing=forced, beta=beta,
                           free_bits=cfg.kl.free_bits)
        loss = terms.loss
        if self.hallucinator:
            loss = loss + self.hallucination_loss(batch=len(idx), forced=forced, beta=beta)
        if codes is not None:
            loss = loss + cfg.train.prior_fill * self.prior_fill_loss(codes, batch=len(idx))
            assert self.last_codes is not None
            self.last_codes[src] = terms.mu.detach()
        self.step += 1
        figures = torch.stack([loss, terms.recon, terms.kl, terms.logvar.abs().max()]).detach().tolist()  # one sync
        point = {"step": float(self.step), "loss": figures[0], "kl": figures[2], "logvar_absmax": figures[3]}
        if not math.isfinite(figures[0]):
            self._keep(point)
            raise _Diverged(self.step, f"non-finite loss ({point['loss']}) at epoch {epoch + 1}",
                            terms.first_nonfinite())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        module_norms = {name: grad_norm(group) for name, group in self.groups.items()}
        total = torch.linalg.vector_norm(torch.stack(list(module_norms.values())))
        values = torch.stack([total, *module_norms.values()]).tolist()  # one sync
        point.update(grad_norm=values[0], **{f"grad_norm_{k}": v for k, v in zip(module_norms, values[1:])})
        self._keep(point)
        if not math.isfinite(values[0]):
            bad = [name for name, v in zip(module_norms, values[1:]) if not math.isfinite(v)]
            named = [(name, p.grad) for name, p in self.model.named_parameters() if p.grad is not None]
            tensor = first_nonfinite([(f"gradient of {name}", grad) for name, grad in named])
            if tensor is None:  # every gradient finite, but their squares overflowed the norm
                name, grad = max(named, key=lambda item: float(item[1].abs().max()))
                tensor = (f"none (the norm overflowed); largest gradient: {name}, "
                          f"|g| up to {float(grad.abs().max()):.3g}")
            raise _Diverged(self.step, f"non-finite gradient in {'+'.join(bad)} at epoch {epoch + 1}", tensor)
        if cfg.optim.clip_norm is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, cfg.optim.clip_norm, total)
        factor = lr_factor(cfg.optim, step=self.step - 1, total_steps=cfg.train.epochs * self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.optim.lr * factor
        self.optimizer.step()
        self.grad_norm_max = max(values[0], self.grad_norm_max or 0.0)
        return {**point, "recon": figures[1], "kl_weight": beta}

    @torch.no_grad()
    def codes(self) -> torch.Tensor:
        """Posterior means (N, L) of every training word under the current weights (eval mode). Prior fill needs
        them once, before the first step; afterwards each word's mean from its latest training step is kept
        (``last_codes``), which costs nothing: a pass over every word took a quarter of an epoch."""
        self.model.eval()
        mu, _ = self.model.encode(self.chars, self.lengths, self.tenses)
        self.model.train()
        return mu

    def prior_fill_loss(self, codes: torch.Tensor, *, batch: int) -> torch.Tensor:
        """Reconstruction loss (per word) of ``batch`` prior draws, each decoded as the verb of its nearest code
        in a drawn tense (``train.prior_fill``)."""
        z = torch.randn(batch, self.config.model.latent_size, device=self.device)
        nearest = torch.cdist(z, codes).argmin(dim=1).cpu()  # (batch,) word indices
        target_idx = self.drawn_form(nearest)
        width = int(self.lengths[target_idx].max()) + 1
        tgt = target_idx.to(self.device)
        targets = self.targets[tgt, :width]
        return reconstruction(self.model.decoder(z, self.model.cond(self.tenses[tgt]), targets), targets)  # no source

    def hallucination_loss(self, *, batch: int, forced: bool, beta: float) -> torch.Tensor:
        """The loss (per word) of round(train.hallucinate x batch) conversions of hallucinated verbs, each from a
        drawn tense to a drawn tense, read from the source (``cvae.hallucination``)."""
        rows = self.hallucinator.draw(max(1, round(self.config.train.hallucinate * batch)), self.rng)
        src = torch.randint(len(TENSES), (len(rows),))
        tgt = torch.randint(len(TENSES), (len(rows),))
        sources = make_batch([row[t] for row, t in zip(rows, src.tolist())])
        targets = make_batch([row[t] for row, t in zip(rows, tgt.tolist())]).targets
        terms = loss_terms(self.model, sources.chars.to(self.device), sources.lengths, targets.to(self.device),
                           src.to(self.device), tgt.to(self.device), teacher_forcing=forced, beta=beta,
                           free_bits=self.config.kl.free_bits, read_source=True)
        return terms.loss

    def _keep(self, point: dict[str, float]) -> None:
        """Keep one step's figures: the first TRACE_HEAD steps always, the latest TRACE_TAIL for a divergence."""
        (self.trace_head if len(self.trace_head) < TRACE_HEAD else self.trace_tail).append(point)

    def trace(self, *, diverged: bool) -> list[dict[str, float]]:
        """Per-step figures: the run's first steps, and for a diverged run every kept step up to the last."""
        return [*self.trace_head, *self.trace_tail] if diverged else list(self.trace_head)

    def evaluate(self) -> tuple[dict[str, float], list[float], dict[str, Any]]:
        """Every figure of an evaluated epoch of the current weights (``cvae.evaluation``)."""
        return evaluate(self.model, config=self.config, data=self.data, words=(self.chars, self.lengths, self.tenses),
                        mi_index=self.mi_index)


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
    selection = Selection(cfg.select)
    detector = CollapseDetector(config, steps_per_epoch=trainer.steps_per_epoch)
    status, diverged, stopped_epoch = Ending.OK, None, None
    epochs_done = 0
    started = time.perf_counter()
    for epoch in range(cfg.epochs):
        try:
            train_figures = trainer.train_epoch(epoch, progress)
        except _Diverged as exc:
            status, diverged = Ending.DIVERGED, exc
            break
        epochs_done = epoch + 1
        if (epoch + 1) % cfg.eval_every and epoch + 1 != cfg.epochs:
            continue
        val_figures, dims, samples = trainer.evaluate()
        record = EpochRecord(epoch=epoch + 1, step=trainer.step, metrics={**train_figures, **val_figures},
                             kl_per_dim=dims)
        history.append(record)
        selection.offer(record, trainer.model, samples)
        if any(callback(record) for callback in callbacks):
            status = Ending.STOPPED
            break
        if (verdict := detector(record)) is not None:
            status, stopped_epoch = Ending(verdict), record.epoch
            break
    chosen = selection.chosen
    return TrainResult(status=status, config=config, best_epoch=chosen.epoch if chosen else None,
                       metrics=chosen.metrics if chosen else {}, history=history,
                       state_dict=chosen.state if chosen else None, samples=chosen.samples if chosen else {},
                       steps=trainer.step, wall_time_s=time.perf_counter() - started,
                       diverged_step=diverged.step if diverged else None,
                       divergence_cause=diverged.cause if diverged else None, grad_norm_max=trainer.grad_norm_max,
                       epochs_done=epochs_done, stopped_epoch=stopped_epoch,
                       trace=trainer.trace(diverged=diverged is not None),
                       nonfinite=diverged.tensor if diverged else None, device=describe(trainer.device),
                       rule_heldout_bleu4=RuleBaseline.learn(data.trained).bleu4(data.heldout)
                       if data.heldout else None)
