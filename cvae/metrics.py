"""Metrics and latent diagnostics, exactly as defined in the project guide (§3).

- BLEU-4: nltk sentence_bleu on plain strings (character n-grams), smoothing method1, weights (1/3,)*3 when
  the target has 3 characters (as the lab's helper does), mean over pairs.
- Gaussian score: fraction of 100 prior draws whose 4 greedy words, in tense order, form a row of train.txt.
  Rows are compared as a set: a row duplicated in train.txt counts once (the lab's helper counted it twice).
- KL per dimension, active units (Burda et al. 2015), mutual information I(x; z) with q(z) the batch mixture.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence

import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from cvae.data import TENSES

_SMOOTH = SmoothingFunction().method1


def bleu4(prediction: str, target: str) -> float:
    """The lab's BLEU-4 of one prediction against one target, on characters."""
    weights = (0.33, 0.33, 0.33) if len(target) == 3 else (0.25, 0.25, 0.25, 0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sentence_bleu([target], prediction, weights=weights, smoothing_function=_SMOOTH))


def mean_bleu4(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Mean BLEU-4 over aligned predictions and targets."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("no targets to score")
    return sum(bleu4(p, t) for p, t in zip(predictions, targets)) / len(targets)


Generator = Callable[[torch.Tensor, torch.Tensor], list[str]]
"""generate(z (N, L), tense (N,)) -> N greedy words."""


def gaussian_generations(generate: Generator, *, n: int, latent_size: int, seed: int) -> list[tuple[str, ...]]:
    """Decode ``n`` draws z ~ N(0, I) under each tense, in one batch: n tuples of 4 words in tense order."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent_size, generator=gen)  # (n, L)
    k = len(TENSES)
    words = generate(z.repeat_interleave(k, dim=0), torch.arange(k).repeat(n))  # (n*4,) draw-major
    return [tuple(words[i * k:(i + 1) * k]) for i in range(n)]


def gaussian_score(generations: Iterable[tuple[str, ...]], train_rows: Iterable[Sequence[str]]) -> float:
    """Fraction of generated 4-tuples that equal a row of train (set membership)."""
    rows = {tuple(r) for r in train_rows}
    generations = list(generations)
    if not generations:
        raise ValueError("no generations to score")
    return sum(1 for g in generations if tuple(g) in rows) / len(generations)


def gaussian_unique(generations: Iterable[tuple[str, ...]], train_rows: Iterable[Sequence[str]]) -> float:
    """Distinct train rows among the hits, per draw: a decoder that emits one valid row for every z scores a
    Gaussian score of 1 but a `gaussian_unique` of 1/n; a varied, valid sampler scores close to its Gaussian score."""
    rows = {tuple(r) for r in train_rows}
    generations = [tuple(g) for g in generations]
    if not generations:
        raise ValueError("no generations to score")
    return len({g for g in generations if g in rows}) / len(generations)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) || N(0,1)) per dimension, averaged over the rows of mu, logvar (N, L) -> (L,)."""
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """#{j : Var_x(E_q[z_j|x]) > threshold} over the rows of mu (N, L)."""
    if mu.shape[0] < 2:
        return 0
    return int((mu.var(dim=0) > threshold).sum())


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, *, seed: int = 0) -> float:
    """I(x; z) = E_x E_q(z|x)[log q(z|x) - log q(z)], q(z) the mixture of the batch's posteriors (N, L)."""
    n, dims = mu.shape
    gen = torch.Generator().manual_seed(seed)
    neg_entropy = (-0.5 * dims * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(dim=1)).mean()
    noise = torch.randn(mu.shape, generator=gen).to(mu.device)  # drawn on the CPU: the same on every device
    z = mu + noise * torch.exp(0.5 * logvar)  # (N, L): one sample per x
    dev = z.unsqueeze(1) - mu.unsqueeze(0)  # (N, N, L)
    log_density = -0.5 * (dev.pow(2) / logvar.exp().unsqueeze(0)).sum(dim=2) \
        - 0.5 * (dims * math.log(2 * math.pi) + logvar.sum(dim=1).unsqueeze(0))  # (N, N)
    log_qz = torch.logsumexp(log_density, dim=1) - math.log(n)  # (N,)
    return float(neg_entropy - log_qz.mean())
