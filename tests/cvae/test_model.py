import pytest
import torch

from cvae.config import ModelConfig
from cvae.data import EOS, N_OUTPUTS, PAD, make_batch
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


@pytest.mark.parametrize("decoder", ["attention", "copy"])
@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_attending_decoders_give_distributions(decoder, teacher_forcing):
    """Every step's output of an attending decoder is a distribution over the characters, read source or not."""
    torch.manual_seed(2)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2,
                             decoder=decoder, source_dropout=0.5))
    batch = make_batch(["go", "running", "ran", "x"])
    log_probs, _, _ = model(batch.chars, batch.lengths, batch.targets, torch.tensor([0, 2, 3, 1]),
                            teacher_forcing=teacher_forcing)
    assert log_probs.shape == (4, 8, N_OUTPUTS)
    assert torch.allclose(log_probs.exp().sum(dim=2), torch.ones(4, 8), atol=1e-5)


@pytest.mark.parametrize("decoder", ["attention", "copy"])
def test_a_hidden_source_decodes_as_prior_sampling_does(decoder):
    """A row whose source is hidden (source dropout) is decoded exactly as a prior sample is, from (z, tense)
    alone: the z-only path training teaches is the one the Gaussian score uses."""
    torch.manual_seed(3)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2,
                             decoder=decoder)).eval()
    batch = make_batch(["walk", "sing"])
    _, _, source = model.encode_source(batch.chars, batch.lengths, torch.tensor([0, 0]))
    hidden = source.without(torch.tensor([True, True]))
    z, cond = torch.randn(2, 4), model.cond(torch.tensor([3, 1]))
    assert torch.allclose(model.decoder(z, cond, batch.targets, source=hidden),
                          model.decoder(z, cond, batch.targets), atol=1e-6)
    assert not torch.allclose(model.decoder(z, cond, batch.targets, source=source),
                              model.decoder(z, cond, batch.targets), atol=1e-4)


@pytest.mark.parametrize("decoder", ["attention", "copy"])
def test_greedy_with_a_source_agrees_with_teacher_forcing(decoder):
    torch.manual_seed(4)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2,
                             latent_to_cell=True, z_every_step=True, decoder=decoder)).eval()
    batch = make_batch(["walk", "sing", "be"])
    mu, _, source = model.encode_source(batch.chars, batch.lengths, torch.tensor([0, 0, 1]))
    cond = model.cond(torch.tensor([3, 2, 0]))
    emitted = model.decoder.greedy(mu, cond, max_length=6, source=source)
    log_probs = model.decoder(mu, cond, emitted, source=source)
    live = emitted != PAD
    assert torch.equal(log_probs.argmax(dim=2)[live], emitted[live])


def test_the_copy_gate_can_spell_an_unseen_word_letter_by_letter():
    """With the copy gate open and the attention on step t's letter, the decoder emits the source word itself:
    copying is a path that needs no vocabulary of verbs."""
    torch.manual_seed(5)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2,
                             decoder="copy")).eval()
    with torch.no_grad():
        model.decoder.gate.bias.fill_(50.0)  # always copy
        model.decoder.query.weight.zero_()  # the query is the step's position ...
        model.decoder.letter.weight.zero_()
        model.decoder.empty.fill_(-1e3)
        rows = model.decoder.position.num_embeddings
        model.decoder.position.weight.copy_(torch.eye(16).repeat(rows // 16 + 1, 1)[:rows] * 40)  # one-hot
    batch = make_batch(["zqxv"])
    _, _, source = model.encode_source(batch.chars, batch.lengths, torch.tensor([0]))
    source.slots.copy_(model.decoder.position.weight[:4].unsqueeze(0))  # ... and a slot is its position
    emitted = model.decoder.greedy(torch.zeros(1, 4), model.cond(torch.tensor([1])), max_length=4, source=source)
    assert emitted[0].tolist() == batch.chars[0].tolist()


@pytest.mark.parametrize("decoder", ["lab", "attention", "copy"])
def test_direct_sampling_decodes_every_tense_from_z_alone(decoder):
    torch.manual_seed(6)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2, decoder=decoder,
                             sampling="direct" if decoder != "lab" else "lemma")).eval()  # `lab` ignores lemma
    z, tense = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 3, 1])
    assert model.sample(z, tense, max_length=6) == model.generate(z, tense, max_length=6)


@pytest.mark.parametrize("decoder", ["attention", "copy"])
@pytest.mark.parametrize("seed", range(4))
def test_lemma_sampling_converts_the_simple_present_it_generated(decoder, seed):
    """`lemma`: a draw's simple present comes from (z, tense) alone, and each other tense is that word read as the
    source and decoded with the same z, whatever the order of the rows and however often a draw repeats."""
    torch.manual_seed(seed)
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2, decoder=decoder,
                             sampling="lemma")).eval()
    with torch.no_grad():
        model.decoder.out.bias[2:].add_(3.0)  # letters before EOS: an untrained decoder would stop at once
    draws = torch.randn(3, 4)
    pick = torch.tensor([2, 0, 2, 1, 0, 2, 1, 0])
    z, tense = draws[pick], torch.tensor([1, 0, 3, 2, 2, 0, 0, 3])
    words = model.sample(z, tense, max_length=5)
    lemmas = model.generate(draws, torch.zeros(3, dtype=torch.long), max_length=5)
    assert all(lemmas)
    for row, (d, t) in enumerate(zip(pick.tolist(), tense.tolist())):
        batch = make_batch([lemmas[d]])
        _, _, source = model.encode_source(batch.chars, batch.lengths, torch.tensor([0]))
        expected = lemmas[d] if t == 0 else model.generate(draws[d:d + 1], tense[row:row + 1], max_length=5,
                                                            source=source)[0]
        assert words[row] == expected


def test_an_empty_lemma_samples_four_empty_words():
    model = CVAE(ModelConfig(rnn="lstm", hidden_size=16, embed_size=8, latent_size=4, cond_size=2, decoder="copy",
                             sampling="lemma")).eval()
    with torch.no_grad():
        model.decoder.out.bias[EOS].fill_(1e3)  # EOS first, from (z, tense) alone
    assert model.sample(torch.randn(2, 4).repeat_interleave(4, dim=0), torch.arange(4).repeat(2)) == [""] * 8
