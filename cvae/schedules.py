"""KL-weight and teacher-forcing schedules: pure functions of where training is."""

from __future__ import annotations

import math

from cvae.config import KLConfig, OptimConfig, TeacherForcingConfig


def kl_weight(cfg: KLConfig, *, epoch: int, step: int, epochs: int, steps_per_epoch: int) -> float:
    """Beta at 0-based ``epoch`` / global ``step`` of a run of ``epochs`` x ``steps_per_epoch`` steps.

    - constant: beta_max.
    - monotonic: beta_start + (beta_max - beta_start) * min(1, t / ramp). The seed's rule (0.001 per epoch
      from 0, capped at 1) is beta_start=0, beta_max=1, ramp=1000, unit=epoch.
    - cyclical (Fu et al. 2019): the run is split into ``cycles`` equal periods; within each, beta rises
      linearly from 0 to beta_max over the first ``ratio`` of the period and then stays at beta_max.
    """
    if cfg.schedule == "constant":
        return cfg.beta_max
    t, total = (epoch, epochs) if cfg.unit == "epoch" else (step, epochs * steps_per_epoch)
    if cfg.schedule == "monotonic":
        return cfg.beta_start + (cfg.beta_max - cfg.beta_start) * min(1.0, t / cfg.ramp)
    period = total / cfg.cycles
    tau = (t % period) / period
    return cfg.beta_max * min(1.0, tau / cfg.ratio)


def teacher_forcing_ratio(cfg: TeacherForcingConfig, *, epoch: int) -> float:
    """Teacher-forcing ratio at 0-based ``epoch``: constant, or linear from start to end over decay_epochs."""
    if cfg.schedule == "constant":
        return cfg.start
    return cfg.start + (cfg.end - cfg.start) * min(1.0, epoch / cfg.decay_epochs)


def lr_factor(cfg: OptimConfig, *, step: int, total_steps: int) -> float:
    """Multiplier of ``cfg.lr`` at 0-based optimizer ``step`` of ``total_steps``: 1 for `constant`; for `cosine`,
    lr_final + (1 - lr_final) * (1 + cos(pi * step / (total_steps - 1))) / 2, from 1 down to lr_final."""
    if cfg.lr_schedule == "constant" or total_steps <= 1:
        return 1.0
    progress = min(1.0, step / (total_steps - 1))
    return cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def kl_warmup_epochs(cfg: KLConfig, *, epochs: int, steps_per_epoch: int) -> float:
    """Epochs until the KL weight first reaches ``beta_max``: 0 for `constant`, the ramp for `monotonic`, the first
    cycle's ramp for `cyclical`. The collapse detector only looks at epochs after it."""
    if cfg.schedule == "constant":
        return 0.0
    if cfg.schedule == "monotonic":
        return cfg.ramp if cfg.unit == "epoch" else cfg.ramp / steps_per_epoch
    return epochs / cfg.cycles * cfg.ratio
