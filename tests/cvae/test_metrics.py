import math

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from cvae.metrics import (active_units, bleu4, gaussian_generations, gaussian_score, kl_per_dim,
                          mean_bleu4, mutual_information)

ROWS = [("go", "goes", "going", "went"), ("run", "runs", "running", "ran"), ("go", "goes", "going", "went")]


@pytest.mark.parametrize(("prediction", "target"), [("abandoned", "abandoned"), ("abandond", "abandoned"),
                                                    ("beginning", "begins"), ("", "went"), ("xyz", "ran")])
def test_bleu4_equals_nltk(prediction, target):
    weights = (0.33, 0.33, 0.33) if len(target) == 3 else (0.25, 0.25, 0.25, 0.25)
    expected = sentence_bleu([target], prediction, weights=weights,
                             smoothing_function=SmoothingFunction().method1)
    assert bleu4(prediction, target) == pytest.approx(expected)


def test_bleu4_exact_and_mean():
    assert bleu4("abandoned", "abandoned") == pytest.approx(1.0)
    assert mean_bleu4(["went", "xx"], ["went", "ran"]) == pytest.approx((1.0 + bleu4("xx", "ran")) / 2)
    with pytest.raises(ValueError):
        mean_bleu4(["a"], ["a", "b"])


def fake_generator(pattern):
    """A decoder whose word for draw i, tense t is pattern(i, t)."""
    def generate(z, tense):
        n = z.shape[0] // 4
        return [pattern(i // 4, int(tense[i])) for i in range(4 * n)]
    return generate


def test_gaussian_score_exact_rows_and_never():
    always = fake_generator(lambda i, t: ROWS[i % 2][t])
    never = fake_generator(lambda i, t: ROWS[i % 2][(t + 1) % 4])  # right words, wrong tense order
    assert gaussian_score(gaussian_generations(always, n=100, latent_size=4, seed=0), ROWS) == 1.0
    assert gaussian_score(gaussian_generations(never, n=100, latent_size=4, seed=0), ROWS) == 0.0


def test_gaussian_score_counts_duplicated_rows_once():
    # the duplicated row ("go", ...) is a set member: a hit counts 1, not 2
    half = fake_generator(lambda i, t: ROWS[0][t] if i % 2 == 0 else "zz")
    assert gaussian_score(gaussian_generations(half, n=10, latent_size=2, seed=1), ROWS) == 0.5


def test_gaussian_generations_use_pure_prior_noise_in_tense_order():
    seen = {}

    def generate(z, tense):
        seen["z"], seen["tense"] = z, tense
        return ["w"] * len(tense)

    gaussian_generations(generate, n=5, latent_size=3, seed=7)
    expected = torch.randn(5, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(seen["z"][::4], expected)
    assert seen["tense"].tolist() == [0, 1, 2, 3] * 5


def test_kl_per_dim_and_active_units():
    mu = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    logvar = torch.zeros(2, 2)
    assert kl_per_dim(mu, logvar).tolist() == pytest.approx([0.0, 0.5])
    assert active_units(mu) == 1
    assert active_units(torch.zeros(10, 4)) == 0


def test_mutual_information_zero_when_posteriors_equal_and_large_when_separated():
    n, dims = 512, 4
    collapsed = mutual_information(torch.zeros(n, dims), torch.zeros(n, dims))
    assert abs(collapsed) < 0.25  # zero up to the one-sample Monte-Carlo noise (std ~0.06 here)
    mu = torch.randn(n, dims, generator=torch.Generator().manual_seed(0)) * 10
    separated = mutual_information(mu, torch.full((n, dims), -6.0))
    assert separated == pytest.approx(math.log(n), rel=0.05)  # bounded by log N, reached when separable


def test_gaussian_unique_exposes_a_decoder_stuck_on_one_row():
    from cvae.metrics import gaussian_unique
    stuck = gaussian_generations(fake_generator(lambda i, t: ROWS[0][t]), n=50, latent_size=2, seed=0)
    varied = gaussian_generations(fake_generator(lambda i, t: ROWS[i % 2][t]), n=50, latent_size=2, seed=0)
    assert gaussian_score(stuck, ROWS) == 1.0 and gaussian_unique(stuck, ROWS) == pytest.approx(1 / 50)
    assert gaussian_unique(varied, ROWS) == pytest.approx(2 / 50)
