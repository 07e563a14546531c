"""cvae.losses: one batch's loss (reconstruction + beta * KL, each dimension's KL floored by free bits), the
non-finite check, the gradient norm and the optimizer."""

import math

import pytest
import torch

from cvae.config import ModelConfig
from cvae.data import make_batch
from cvae.losses import first_nonfinite, grad_norm, loss_terms, make_optimizer
from cvae.model import CVAE
from tests.conftest import tiny_config

LATENT = 4


def terms(*, beta: float, free_bits: float):
    """The loss terms of one fixed batch under a fixed seed (same draw of z every call)."""
    torch.manual_seed(0)
    model = CVAE(ModelConfig(hidden_size=16, embed_size=8, latent_size=LATENT, cond_size=2)).eval()
    batch = make_batch(["go", "went", "running"])
    tense = torch.tensor([0, 3, 2])
    torch.manual_seed(1)
    return loss_terms(model, batch.chars, batch.lengths, batch.targets, tense, tense, teacher_forcing=True,
                      beta=beta, free_bits=free_bits)


def test_free_bits_floor_each_dimensions_kl_in_the_loss_but_not_the_reported_kl():
    plain, floored = terms(beta=1.0, free_bits=0.0), terms(beta=1.0, free_bits=1000.0)
    assert plain.loss.item() == pytest.approx(plain.recon.item() + plain.kl.item(), rel=1e-5)
    assert plain.kl.item() < LATENT * 1000.0  # every dimension sits below the floor, so each counts 1000
    assert floored.loss.item() == pytest.approx(floored.recon.item() + LATENT * 1000.0, rel=1e-5)
    assert floored.kl.item() == pytest.approx(plain.kl.item())  # the reported KL is never floored


def test_beta_zero_leaves_the_reconstruction_alone():
    zero = terms(beta=0.0, free_bits=0.5)
    assert zero.loss.item() == pytest.approx(zero.recon.item())
    assert zero.first_nonfinite() is None and zero.mu.shape == zero.logvar.shape == (3, LATENT)


def test_first_nonfinite_names_the_first_bad_tensor_in_order():
    good, bad = torch.ones(2), torch.tensor([1.0, math.nan])
    assert first_nonfinite([("a", good), ("b", None), ("c", bad), ("d", torch.tensor([math.inf]))]) == "c"
    assert first_nonfinite([("a", good), ("b", None)]) is None


def test_grad_norm_is_the_global_l2_norm_of_the_gradients():
    a, b, unused = (torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True),
                    torch.zeros(3, requires_grad=True))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    assert grad_norm([a, b, unused]).item() == pytest.approx(5.0)
    assert grad_norm([unused]).item() == 0.0


@pytest.mark.parametrize(("name", "kind"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                            ("adamw", torch.optim.AdamW)])
def test_make_optimizer_builds_the_named_optimizer_with_the_configured_lr(name, kind):
    config = tiny_config(optim={"name": name, "lr": 0.25})
    optimizer = make_optimizer(config, [torch.zeros(1, requires_grad=True)])
    assert type(optimizer) is kind and optimizer.param_groups[0]["lr"] == 0.25
