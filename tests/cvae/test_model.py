import pytest
import torch

from cvae.config import ModelConfig
from cvae.data import N_OUTPUTS, PAD, make_batch
from cvae.model import CVAE


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("teacher_forcing", [True, False])
@pytest.mark.parametrize("z_every_step", [False, True])
def test_shapes(rnn, teacher_forcing, z_every_step):
    cfg = ModelConfig(rnn=rnn, hidden_size=24, embed_size=8, latent_size=6, cond_size=4, word_dropout=0.2,
                      latent_to_cell=rnn == "lstm", z_every_step=z_every_step)
    model = CVAE(cfg)
    batch = make_batch(["go", "running", "ran"])
    tense = torch.tensor([0, 2, 3])
    logits, mu, logvar = model(batch.chars, batch.lengths, batch.targets, tense, teacher_forcing=teacher_forcing)
    assert logits.shape == (3, 8, N_OUTPUTS)  # (B, T+1, V)
    assert mu.shape == logvar.shape == (3, 6)  # (B, L)
    words = model.generate(torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 0]), max_length=4)
    assert len(words) == 5 and all(len(w) <= 4 for w in words)


def test_encoder_ignores_padding():
    model = CVAE(ModelConfig(hidden_size=16, embed_size=8, latent_size=4, cond_size=2)).eval()
    alone = make_batch(["go"])
    padded = make_batch(["go", "running"])
    mu_alone, _ = model.encode(alone.chars, alone.lengths, torch.tensor([0]))
    mu_padded, _ = model.encode(padded.chars, padded.lengths, torch.tensor([0, 2]))
    assert torch.allclose(mu_alone[0], mu_padded[0], atol=1e-6)


def test_teacher_forced_output_is_causal():
    """With full teacher forcing, logits at step t depend only on targets before t (padding is harmless)."""
    torch.manual_seed(0)
    model = CVAE(ModelConfig(hidden_size=16, embed_size=8, latent_size=4, cond_size=2)).eval()
    z, cond = torch.randn(1, 4), model.cond(torch.tensor([1]))
    short = make_batch(["go"]).targets
    longer = torch.cat([short, torch.tensor([[5, 6]])], dim=1)
    a = model.decoder(z, cond, short)
    b = model.decoder(z, cond, longer)
    assert torch.allclose(a, b[:, : a.shape[1]], atol=1e-6)


@pytest.mark.parametrize("z_every_step", [False, True])
def test_greedy_agrees_with_teacher_forcing(z_every_step):
    """Feeding greedy's own output back under teacher forcing reproduces it: both paths build the same inputs."""
    torch.manual_seed(1)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2,
                             latent_to_cell=True, z_every_step=z_every_step)).eval()
    z, tense = torch.randn(3, 4), torch.tensor([0, 1, 3])
    emitted = model.decoder.greedy(z, model.cond(tense), max_length=6)  # (B, <=6)
    logits = model.decoder(z, model.cond(tense), emitted)  # (B, T, V)
    live = emitted != PAD  # positions up to each row's first EOS
    assert torch.equal(logits.argmax(dim=2)[live], emitted[live])
