"""Conditional seq2seq VAE over characters: encoder, decoder and the CVAE that ties them.

Shapes: B batch, T characters, E char embedding, C condition embedding, H hidden, L latent, V outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from cvae.config import ModelConfig
from cvae.data import EOS, N_INPUTS, N_OUTPUTS, PAD, SOS, TENSES, UNK, Pair, decode_indices, make_batch


def _rnn(kind: str, input_size: int, hidden_size: int) -> nn.RNNBase:
    cls = nn.GRU if kind == "gru" else nn.LSTM
    return cls(input_size, hidden_size, batch_first=True)


class Encoder(nn.Module):
    """Characters + tense -> mean and log-variance of q(z | x, c)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(N_INPUTS, cfg.embed_size, padding_idx=PAD)
        self.rnn = _rnn(cfg.rnn, cfg.embed_size, cfg.hidden_size)
        self.to_mu = nn.Linear(cfg.hidden_size, cfg.latent_size)
        self.to_logvar = nn.Linear(cfg.hidden_size, cfg.latent_size)
        self.mu_bn = None
        if cfg.mu_bn is not None:  # BN-VAE: fixed scale, learnt shift
            self.mu_bn = nn.BatchNorm1d(cfg.latent_size)
            self.mu_bn.weight.data.fill_(cfg.mu_bn)
            self.mu_bn.weight.requires_grad_(False)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor, cond: torch.Tensor):
        batch = chars.shape[0]
        # initial state: zeros with the tense embedding in its last C units, as in the lab
        h0 = torch.cat([cond.new_zeros(batch, self.cfg.hidden_size - cond.shape[1]), cond], dim=1)  # (B, H)
        h0 = h0.unsqueeze(0)  # (1, B, H)
        state = (h0, torch.zeros_like(h0)) if self.cfg.rnn == "lstm" else h0
        packed = pack_padded_sequence(self.embed(chars), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, final = self.rnn(packed, state)
        h = (final[0] if self.cfg.rnn == "lstm" else final).squeeze(0)  # (B, H)
        mu = self.to_mu(h)  # (B, L)
        if self.mu_bn is not None:
            mu = self.mu_bn(mu)
        return mu, self.to_logvar(h)  # (B, L), (B, L)


class Decoder(nn.Module):
    """(z, tense) -> initial state; emits characters until EOS."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.init_h = nn.Linear(cfg.latent_size + cfg.cond_size, cfg.hidden_size)
        self.init_c = (nn.Linear(cfg.latent_size + cfg.cond_size, cfg.hidden_size)
                       if cfg.rnn == "lstm" and cfg.latent_to_cell else None)
        self.embed = nn.Embedding(N_INPUTS, cfg.embed_size, padding_idx=PAD)
        extra = cfg.latent_size + cfg.cond_size if cfg.z_every_step else 0
        self.rnn = _rnn(cfg.rnn, cfg.embed_size + extra, cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, N_OUTPUTS)

    def inputs(self, chars: torch.Tensor, zc: torch.Tensor) -> torch.Tensor:
        """RNN inputs (B, T, E [+ L + C]) for characters (B, T); with `z_every_step`, (z, tense) rides along."""
        embedded = self.embed(chars)
        if not self.cfg.z_every_step:
            return embedded
        return torch.cat([embedded, zc.unsqueeze(1).expand(-1, chars.shape[1], -1)], dim=2)

    def initial_state(self, zc: torch.Tensor):
        """Initial RNN state from (z, tense) concatenated, (B, L + C)."""
        h = self.init_h(zc).unsqueeze(0)  # (1, B, H)
        if self.cfg.rnn == "gru":
            return h
        c = self.init_c(zc).unsqueeze(0) if self.init_c is not None else torch.zeros_like(h)
        return (h, c)

    def forward(self, z: torch.Tensor, cond: torch.Tensor, targets: torch.Tensor, *, teacher_forcing: bool = True,
                word_dropout: float = 0.0) -> torch.Tensor:
        """Logits (B, T+1, V) for ``targets`` (B, T+1: characters, EOS, PAD).

        With ``teacher_forcing`` every step is fed the true previous character (one RNN call over the sequence);
        without it, the model's own previous argmax (free running, one call per character).
        """
        batch, steps = targets.shape
        zc = torch.cat([z, cond], dim=1)  # (B, L + C)
        state = self.initial_state(zc)
        truth = torch.cat([targets.new_full((batch, 1), SOS), targets[:, :-1]], dim=1)  # (B, T+1) inputs
        if teacher_forcing:
            if word_dropout > 0.0:
                drop = torch.rand(truth.shape, device=truth.device) < word_dropout
                drop[:, 0] = False
                truth = truth.masked_fill(drop & (truth != PAD), UNK)
            output, _ = self.rnn(self.inputs(truth, zc), state)  # (B, T+1, H)
            return self.out(output)  # (B, T+1, V)
        logits = []
        inp = truth[:, 0]  # (B,) SOS
        for _ in range(steps):
            output, state = self.rnn(self.inputs(inp.unsqueeze(1), zc), state)  # (B, 1, H)
            step_logits = self.out(output.squeeze(1))  # (B, V)
            logits.append(step_logits)
            inp = step_logits.argmax(dim=1)
        return torch.stack(logits, dim=1)  # (B, T+1, V)

    @torch.no_grad()
    def greedy(self, z: torch.Tensor, cond: torch.Tensor, max_length: int) -> torch.Tensor:
        """Greedy decoding of a batch: (B, <= max_length) emitted indices, PAD after EOS."""
        batch = z.shape[0]
        zc = torch.cat([z, cond], dim=1)  # (B, L + C)
        state = self.initial_state(zc)
        inp = torch.full((batch,), SOS, dtype=torch.long, device=z.device)
        done = torch.zeros(batch, dtype=torch.bool, device=z.device)
        emitted = []
        for _ in range(max_length):
            output, state = self.rnn(self.inputs(inp.unsqueeze(1), zc), state)  # (B, 1, H)
            inp = self.out(output.squeeze(1)).argmax(dim=1)  # (B,)
            emitted.append(inp.masked_fill(done, PAD))
            done |= inp == EOS
            if bool(done.all()):
                break
        return torch.stack(emitted, dim=1)


class CVAE(nn.Module):
    """Conditional VAE: tense embedding shared by encoder and decoder."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cond = nn.Embedding(len(TENSES), cfg.cond_size)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @property
    def device(self) -> torch.device:
        return self.cond.weight.device

    def encode(self, chars: torch.Tensor, lengths: torch.Tensor, tense: torch.Tensor):
        """Mean and log-variance (B, L) of q(z | x, c); inputs may come from any device."""
        return self.encoder(chars.to(self.device), lengths, self.cond(tense.to(self.device)))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, chars, lengths, targets, tense, *, target_tense=None, teacher_forcing: bool = True):
        """Encode words under ``tense``, decode ``targets`` under ``target_tense`` (default: the same tense).

        Returns logits (B, T+1, V), mu, logvar (B, L).
        """
        mu, logvar = self.encode(chars, lengths, tense)
        z = self.reparameterize(mu, logvar)
        word_dropout = self.cfg.word_dropout if self.training else 0.0
        target_tense = tense if target_tense is None else target_tense
        logits = self.decoder(z, self.cond(target_tense), targets, teacher_forcing=teacher_forcing,
                              word_dropout=word_dropout)
        return logits, mu, logvar

    @torch.no_grad()
    def generate(self, z: torch.Tensor, tense: torch.Tensor, max_length: int | None = None) -> list[str]:
        """Greedy words from latents ``z`` (B, L) under tenses (B,); inputs may come from any device."""
        z, tense = z.to(self.device), tense.to(self.device)
        emitted = self.decoder.greedy(z, self.cond(tense), max_length or self.cfg.max_length)
        return [decode_indices(row) for row in emitted.tolist()]


def convert(model: CVAE, pairs: Sequence[Pair]) -> list[str]:
    """Greedy conversions decoded from the encoder's mean (no sampling)."""
    batch = make_batch([p.source for p in pairs])
    mu, _ = model.encode(batch.chars, batch.lengths, torch.tensor([p.src for p in pairs]))
    return model.generate(mu, torch.tensor([p.tgt for p in pairs]))
