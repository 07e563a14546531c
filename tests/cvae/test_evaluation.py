"""cvae.evaluation: an evaluated epoch's figures, every one named in cvae.names, and the checkpoint-choice figures
kept apart from the reported ones."""

from __future__ import annotations

import torch

from cvae import names
from cvae.data import Data, make_batch
from cvae.evaluation import evaluate, selection_figures
from cvae.model import CVAE
from tests.conftest import tiny_config


def _setup(**sections):
    config = tiny_config(**sections)
    data = Data.load(config)
    torch.manual_seed(0)
    model = CVAE(config.model)
    batch = make_batch(data.words)
    words = (batch.chars, batch.lengths, data.tenses)
    return model, config, data, words


def test_an_evaluation_reports_every_epoch_figure_but_the_training_ones():
    model, config, data, words = _setup()
    metrics, dims, samples = evaluate(model, config=config, data=data, words=words, mi_index=torch.arange(8))
    expected = {key for key in names.EPOCH if not key.startswith("train/")} - set(names.OPTIONAL)
    assert set(metrics) == expected
    assert len(dims) == config.model.latent_size and abs(sum(dims) - metrics[names.LATENT_KL]) < 1e-3
    assert len(samples["test"]) == len(data.test) and len(samples["gaussian"]) <= 20


def test_without_validation_pairs_the_checkpoint_is_chosen_on_the_reported_figures():
    model, config, data, _ = _setup(data={"val_pairs": 0})
    reported = {names.TEST_BLEU: 0.25, names.TEST_GAUSSIAN_UNIQUE: 0.5}
    assert selection_figures(model, config=config, data=data, reported=reported) == {
        names.VAL_BLEU: 0.25, names.VAL_GAUSSIAN: 0.5}
    model, config, data, _ = _setup()
    chosen = selection_figures(model, config=config, data=data, reported=reported)
    assert set(chosen) == {names.VAL_BLEU, names.VAL_GAUSSIAN} and chosen[names.VAL_BLEU] != 0.25
