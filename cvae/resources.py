"""What a configuration will allocate, estimated before any work starts: the weights with their gradients and
optimizer state, one training batch's activations, the largest evaluation pass (noise draws, conversions). A
configuration that cannot fit this machine is refused with one line naming the key that makes it large and the
estimate, instead of failing (or swapping for hours) after minutes of training."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cvae.config import ExperimentConfig
from cvae.data import N_INPUTS, N_OUTPUTS, TENSES
from cvae.errors import ConfigError

FLOAT_BYTES = 4
"""float32 everywhere."""
COPIES_OF_WEIGHTS = 4
"""Weights, gradients and Adam's two moments."""
ACTIVATION_COPIES = 3
"""A training step keeps its forward activations for the backward pass, which makes about as many again."""
SHARE_OF_MEMORY = 0.5
"""The part of this machine's memory one run may plan to use (a study runs several workers at once)."""


@dataclass(frozen=True)
class Part:
    """One allocation of a run: how large it is and the key that makes it so."""

    what: str
    key: str
    bytes: int


def _rnn_params(rnn: str, inputs: int, hidden: int) -> int:
    gates = 3 if rnn == "gru" else 4
    return gates * (hidden * (inputs + hidden) + 2 * hidden)


def estimate(config: ExperimentConfig) -> list[Part]:
    """The run's largest allocations, each with the key that drives it."""
    m, t = config.model, config.train
    extra = m.latent_size + m.cond_size if m.z_every_step else 0
    params = (2 * N_INPUTS * m.embed_size + len(TENSES) * m.cond_size
              + _rnn_params(m.rnn, m.embed_size, m.hidden_size) + 2 * (m.hidden_size + 1) * m.latent_size
              + 2 * (m.latent_size + m.cond_size + 1) * m.hidden_size
              + _rnn_params(m.rnn, m.embed_size + extra, m.hidden_size) + (m.hidden_size + 1) * N_OUTPUTS)
    size_key = "model.hidden_size" if m.hidden_size >= m.embed_size else "model.embed_size"
    gates = 3 if m.rnn == "gru" else 4
    per_step = m.embed_size + extra + (gates + 1) * m.hidden_size + N_OUTPUTS  # one word, one character
    steps = m.max_length + 2  # SOS, the characters, EOS
    decoded_per_step = 2 if t.prior_fill else 1  # prior fill decodes a second batch
    batch = t.batch_size * steps * per_step * ACTIVATION_COPIES * (1 + decoded_per_step) * FLOAT_BYTES
    draws = max(t.gaussian_samples, t.select_samples)
    draws_key = "train.select_samples" if t.select_samples >= t.gaussian_samples else "train.gaussian_samples"
    noise = draws * len(TENSES) * (per_step + steps) * 2 * FLOAT_BYTES
    pairs = config.data.val_pairs * (per_step + steps) * 2 * FLOAT_BYTES
    return [Part("the weights with their gradients and optimizer state", size_key,
                 params * COPIES_OF_WEIGHTS * FLOAT_BYTES),
            Part("a training batch", "train.batch_size", batch),
            Part("decoding the noise draws", draws_key, noise),
            Part("decoding the validation conversions", "data.val_pairs", pairs)]


def machine_memory() -> int:
    """Bytes of memory this machine has."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_resources(config: ExperimentConfig, *, source: str, memory: int | None = None) -> None:
    """Refuse a configuration whose run cannot fit ``memory`` (default: ``SHARE_OF_MEMORY`` of this machine's): a
    one-line ConfigError naming ``source``, the key of the largest part, and the estimate. Allocates nothing."""
    total = machine_memory() if memory is None else memory
    budget = total * SHARE_OF_MEMORY
    parts = estimate(config)
    need = sum(part.bytes for part in parts)
    if need <= budget:
        return
    largest = max(parts, key=lambda part: part.bytes)
    raise ConfigError(f"{source}: key {largest.key}: {largest.what} would take about {_gb(largest.bytes)} (the run "
                      f"about {_gb(need)}), more than the {_gb(budget)} a run may use on this machine "
                      f"({SHARE_OF_MEMORY:.0%} of its {_gb(total)}); make it smaller")
