"""The evaluation of an epoch's weights: the lab's test figures (BLEU-4 of the test conversions, the Gaussian score
and its distinct-row form), the heldout conversions, the latent diagnostics over every training word, and apart
from them the checkpoint-choice figures (validation conversions of train verbs, another noise draw)."""

from __future__ import annotations

from typing import Any

import torch

from cvae import names
from cvae.config import ExperimentConfig
from cvae.data import Data
from cvae.metrics import (
    active_units,
    gaussian_generations,
    gaussian_score,
    gaussian_unique,
    kl_per_dim,
    mean_bleu4,
    mutual_information,
)
from cvae.model import CVAE, convert

N_SAMPLES = 20
"""Gaussian generations kept in a result's samples."""


def selection_figures(model: CVAE, *, config: ExperimentConfig, data: Data,
                      reported: dict[str, float]) -> dict[str, float]:
    """Figures the checkpoint is chosen on, kept apart from the reported ones: BLEU-4 on the validation pairs,
    Gaussian score on another noise draw. Without validation pairs the reported figures are used.

    With verbs withheld from training (``data.val_verbs``), ``val/bleu4`` is the mean of the BLEU-4 of the train
    verbs' conversions and of the withheld verbs' (``val/unseen_bleu4``): every objective then weighs conversion
    of unseen verbs as half of its conversion term, recall of the training verbs as the other half."""
    if not data.val:
        return {names.VAL_BLEU: reported[names.TEST_BLEU], names.VAL_GAUSSIAN: reported[names.TEST_GAUSSIAN_UNIQUE]}
    bleu = mean_bleu4(convert(model, data.val), [p.target for p in data.val])
    figures = {}
    if data.val_unseen:
        unseen = mean_bleu4(convert(model, data.val_unseen), [p.target for p in data.val_unseen])
        figures[names.VAL_UNSEEN_BLEU] = unseen
        bleu = (bleu + unseen) / 2
    generations = gaussian_generations(model.sample, n=config.train.select_samples,
                                       latent_size=config.model.latent_size, seed=config.train.eval_seed + 1)
    return {names.VAL_BLEU: bleu, names.VAL_GAUSSIAN: gaussian_unique(generations, data.rows), **figures}


@torch.no_grad()
def evaluate(model: CVAE, *, config: ExperimentConfig, data: Data,
             words: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
             mi_index: torch.Tensor) -> tuple[dict[str, float], list[float], dict[str, Any]]:
    """Test/heldout BLEU-4, Gaussian score, latent diagnostics (over ``words``: the training words' characters,
    lengths and tenses; mutual information on ``mi_index`` of them) and the checkpoint-choice figures of
    ``model``; -> (figures, KL per latent dimension, samples)."""
    cfg = config.train
    model.eval()
    chars, lengths, tenses = words
    mu, logvar = model.encode(chars, lengths, tenses)  # (N, L)
    dims = kl_per_dim(mu, logvar)
    predictions = convert(model, data.test)
    generations = gaussian_generations(model.sample, n=cfg.gaussian_samples, latent_size=config.model.latent_size,
                                       seed=cfg.eval_seed)
    metrics = {
        names.TEST_BLEU: mean_bleu4(predictions, [p.target for p in data.test]),
        names.TEST_GAUSSIAN: gaussian_score(generations, data.rows),
        names.TEST_GAUSSIAN_UNIQUE: gaussian_unique(generations, data.rows),
        names.LATENT_KL: float(dims.sum()),
        names.LATENT_LOGVAR_ABSMAX: float(logvar.abs().max()),
        names.LATENT_ACTIVE_UNITS: float(active_units(mu)),
        names.LATENT_MUTUAL_INFO: mutual_information(mu[mi_index], logvar[mi_index], seed=cfg.eval_seed),
    }
    if data.heldout:
        heldout = convert(model, data.heldout)
        metrics[names.HELDOUT_BLEU] = mean_bleu4(heldout, [p.target for p in data.heldout])
    metrics.update(selection_figures(model, config=config, data=data, reported=metrics))
    samples = {
        "test": [{"source": p.source, "target": p.target, "prediction": pred, "from": p.src, "to": p.tgt}
                 for p, pred in zip(data.test, predictions)],
        "gaussian": [list(g) for g in generations[:N_SAMPLES]],
    }
    return metrics, dims.tolist(), samples
