"""Conditional seq2seq VAE over characters: encoder, decoder and the CVAE that ties them.

Shapes: B batch, T characters, S source characters, E char embedding, C condition embedding, H hidden, L latent,
V outputs.

The decoder (``model.decoder``) reads (z, tense) alone (`lab`, the lab's architecture), or also attends over the
encoder's character states (`attention`), and may copy a source letter (`copy`). An attending decoder always has a
learnt empty slot to attend to: with no source (prior sampling, and ``model.source_dropout`` of the training
words) that slot is all it sees, so it spells the word from (z, tense) alone, as the lab's decoder does. Prior
draws are decoded by ``CVAE.sample``: every tense from (z, tense) alone, or (``model.sampling: lemma``) the simple
present so, then read as the source of the other three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from cvae.config import MAX_WORD_LENGTH, ModelConfig
from cvae.data import EOS, N_INPUTS, N_OUTPUTS, PAD, SOS, TENSES, UNK, Pair, decode_indices, make_batch


def _rnn(kind: str, input_size: int, hidden_size: int) -> nn.RNNBase:
    cls = nn.GRU if kind == "gru" else nn.LSTM
    return cls(input_size, hidden_size, batch_first=True)


@dataclass
class Source:
    """What an attending decoder reads of the source words: one slot per character, and the characters."""

    slots: torch.Tensor  # (B, S, H) what the decoder attends to, one slot a character (``Decoder.slots``)
    chars: torch.Tensor  # (B, S) character indices, PAD after a word
    present: torch.Tensor  # (B,) bool: False for a row decoded from (z, tense) alone

    def without(self, dropped: torch.Tensor) -> "Source":
        """The same source with rows ``dropped`` (B,) bool hidden from the decoder."""
        return Source(slots=self.slots, chars=self.chars, present=self.present & ~dropped)


class Encoder(nn.Module):
    """Characters + tense -> mean and log-variance of q(z | x, c), and the per-character states."""

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
        outputs, final = self.rnn(packed, state)
        h = (final[0] if self.cfg.rnn == "lstm" else final).squeeze(0)  # (B, H)
        mu = self.to_mu(h)  # (B, L)
        if self.mu_bn is not None:
            mu = self.mu_bn(mu)
        states = None
        if self.cfg.decoder != "lab":
            states, _ = pad_packed_sequence(outputs, batch_first=True, total_length=chars.shape[1])  # (B, S, H)
        return mu, self.to_logvar(h), states  # (B, L), (B, L), (B, S, H) or None


class Decoder(nn.Module):
    """(z, tense) -> initial state; emits characters until EOS, attending over the source when it has one."""

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
        if cfg.decoder != "lab":  # Luong et al. 2015 ("general" scores), with a learnt empty slot
            self.empty = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
            self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)
            self.combine = nn.Linear(2 * cfg.hidden_size, cfg.hidden_size)
            # a source slot is its encoder state + its letter + its position; a query knows its step: copying a
            # stem (step t reads letter t) is then one learnt alignment, whatever the verb
            self.letter = nn.Embedding(N_INPUTS, cfg.hidden_size, padding_idx=PAD)
            self.position = nn.Embedding(MAX_WORD_LENGTH + 2, cfg.hidden_size)
            # the encoder reads left to right; a slot also needs the letters after it (where the stem ends)
            self.reader = nn.GRU(cfg.embed_size, cfg.hidden_size // 2, batch_first=True, bidirectional=True)
            self.read_out = nn.Linear(2 * (cfg.hidden_size // 2), cfg.hidden_size)
        if cfg.decoder == "copy":  # See et al. 2017: the share of a step's probability copied from the source
            self.gate = nn.Linear(2 * cfg.hidden_size, 1)

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

    def slots(self, states: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One attention slot (B, S, H) per source character: the encoder's state there, the letter, its position
        and a bidirectional reading of the letters around it; zeros past a word."""
        packed = pack_padded_sequence(self.embed(chars), lengths.cpu(), batch_first=True, enforce_sorted=False)
        read, _ = pad_packed_sequence(self.reader(packed)[0], batch_first=True, total_length=chars.shape[1])
        where = torch.arange(chars.shape[1], device=chars.device).clamp_max(MAX_WORD_LENGTH + 1)
        slots = states + self.letter(chars) + self.position(where) + self.read_out(read)  # (B, S, H)
        return slots * (chars != PAD).unsqueeze(2)

    def emit(self, output: torch.Tensor, source: Source | None, start: int = 0) -> torch.Tensor:
        """Log-probabilities (B, T, V) of the next character from RNN outputs (B, T, H) of steps start.. ."""
        if self.cfg.decoder == "lab":
            return torch.log_softmax(self.out(output), dim=-1)
        batch, steps = output.shape[:2]
        empty = self.empty.expand(batch, 1, -1)  # (B, 1, H)
        if source is None:  # no source: only the empty slot
            keys, visible = empty, output.new_ones(batch, 1, dtype=torch.bool)
        else:
            keys = torch.cat([empty, source.slots], dim=1)  # (B, 1 + S, H)
            letters = (source.chars != PAD) & source.present.unsqueeze(1)  # (B, S)
            visible = torch.cat([letters.new_ones(batch, 1), letters], dim=1)  # (B, 1 + S)
        step = torch.arange(start, start + steps, device=output.device).clamp_max(MAX_WORD_LENGTH + 1)
        scores = (self.query(output) + self.position(step)) @ keys.transpose(1, 2)  # (B, T, 1 + S)
        weights = torch.softmax(scores.masked_fill(~visible.unsqueeze(1), float("-inf")), dim=-1)
        hidden = torch.cat([output, weights @ keys], dim=-1)  # (B, T, 2H)
        probs = torch.softmax(self.out(torch.tanh(self.combine(hidden))), dim=-1)  # (B, T, V)
        if self.cfg.decoder == "copy" and source is not None:
            on_letters = weights[..., 1:]  # (B, T, S): the source letters' share of the attention
            copied = on_letters / on_letters.sum(dim=-1, keepdim=True).clamp_min(1e-9)
            gate = torch.sigmoid(self.gate(hidden)) * source.present.view(batch, 1, 1).to(output.dtype)  # (B, T, 1)
            index = source.chars.masked_fill(source.chars >= N_OUTPUTS, SOS)  # PAD -> a slot of weight 0
            copy = probs.new_zeros(probs.shape).scatter_add_(
                2, index.unsqueeze(1).expand(-1, output.shape[1], -1), copied)  # (B, T, V)
            probs = (1 - gate) * probs + gate * copy
        return torch.log(probs.clamp_min(1e-12))

    def forward(self, z: torch.Tensor, cond: torch.Tensor, targets: torch.Tensor, *, teacher_forcing: bool = True,
                word_dropout: float = 0.0, source: Source | None = None) -> torch.Tensor:
        """Log-probabilities (B, T+1, V) for ``targets`` (B, T+1: characters, EOS, PAD).

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
            return self.emit(output, source)  # (B, T+1, V)
        log_probs = []
        inp = truth[:, 0]  # (B,) SOS
        for t in range(steps):
            output, state = self.rnn(self.inputs(inp.unsqueeze(1), zc), state)  # (B, 1, H)
            step = self.emit(output, source, t).squeeze(1)  # (B, V)
            log_probs.append(step)
            inp = step.argmax(dim=1)
        return torch.stack(log_probs, dim=1)  # (B, T+1, V)

    @torch.no_grad()
    def greedy(self, z: torch.Tensor, cond: torch.Tensor, max_length: int,
               source: Source | None = None) -> torch.Tensor:
        """Greedy decoding of a batch: (B, <= max_length) emitted indices, PAD after EOS."""
        batch = z.shape[0]
        zc = torch.cat([z, cond], dim=1)  # (B, L + C)
        state = self.initial_state(zc)
        inp = torch.full((batch,), SOS, dtype=torch.long, device=z.device)
        done = torch.zeros(batch, dtype=torch.bool, device=z.device)
        emitted = []
        for t in range(max_length):
            output, state = self.rnn(self.inputs(inp.unsqueeze(1), zc), state)  # (B, 1, H)
            inp = self.emit(output, source, t).squeeze(1).argmax(dim=1)  # (B,)
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
        mu, logvar, _ = self.encode_source(chars, lengths, tense)
        return mu, logvar

    def encode_source(self, chars: torch.Tensor, lengths: torch.Tensor, tense: torch.Tensor):
        """Mean, log-variance (B, L) and, for an attending decoder, the Source it reads (else None)."""
        chars = chars.to(self.device)
        mu, logvar, states = self.encoder(chars, lengths, self.cond(tense.to(self.device)))
        source = None
        if states is not None:
            source = Source(slots=self.decoder.slots(states, chars, lengths), chars=chars,
                            present=torch.ones(len(chars), dtype=torch.bool, device=self.device))
        return mu, logvar, source

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, chars, lengths, targets, tense, *, target_tense=None, teacher_forcing: bool = True,
                read_source: bool = False):
        """Encode words under ``tense``, decode ``targets`` under ``target_tense`` (default: the same tense); in
        training, ``model.source_dropout`` of the rows are decoded without their source, the others with the z of
        ``model.source_z``; with ``read_source`` every row reads its source.

        Returns log-probabilities (B, T+1, V), mu, logvar (B, L).
        """
        mu, logvar, source = self.encode_source(chars, lengths, tense)
        z = self.reparameterize(mu, logvar)
        word_dropout = self.cfg.word_dropout if self.training else 0.0
        if source is not None and self.training:
            if self.cfg.source_dropout > 0 and not read_source:
                source = source.without(torch.rand(len(mu), device=mu.device) < self.cfg.source_dropout)
            if self.cfg.source_z == "prior":  # rows that read their source get a z that says nothing of them
                z = torch.where(source.present.unsqueeze(1), torch.randn_like(z), z)
        target_tense = tense if target_tense is None else target_tense
        log_probs = self.decoder(z, self.cond(target_tense), targets, teacher_forcing=teacher_forcing,
                                 word_dropout=word_dropout, source=source)
        return log_probs, mu, logvar

    @torch.no_grad()
    def generate(self, z: torch.Tensor, tense: torch.Tensor, max_length: int | None = None,
                 source: Source | None = None) -> list[str]:
        """Greedy words from latents ``z`` (B, L) under tenses (B,), from (z, tense) alone unless a ``source`` is
        given; inputs may come from any device."""
        z, tense = z.to(self.device), tense.to(self.device)
        emitted = self.decoder.greedy(z, self.cond(tense), max_length or self.cfg.max_length, source)
        return [decode_indices(row) for row in emitted.tolist()]

    @torch.no_grad()
    def sample(self, z: torch.Tensor, tense: torch.Tensor, max_length: int | None = None) -> list[str]:
        """Greedy words from prior draws ``z`` (B, L) under tenses (B,), decoded as ``model.sampling`` says: from
        (z, tense) alone, or (`lemma`) the simple present from (z, tense) alone and every other tense from z while
        reading that word as the source."""
        if not self.cfg.samples_via_lemma:
            return self.generate(z, tense, max_length)
        z, tense = z.to(self.device), tense.to(self.device)
        lemma = TENSES.index("sp")
        draws, row_draw = torch.unique(z, dim=0, return_inverse=True)  # the lemma once per distinct draw
        lemmas = self.generate(draws, torch.full((len(draws),), lemma, dtype=torch.long), max_length)
        words = [lemmas[d] for d in row_draw.tolist()]  # an empty lemma stays empty in every tense
        rest = [i for i, (word, t) in enumerate(zip(words, tense.tolist())) if word and t != lemma]
        if rest:
            batch = make_batch([words[i] for i in rest])
            _, _, source = self.encode_source(batch.chars, batch.lengths, torch.full((len(rest),), lemma))
            rows = torch.tensor(rest, device=self.device)
            for i, word in zip(rest, self.generate(z[rows], tense[rows], max_length, source=source)):
                words[i] = word
        return words


def convert(model: CVAE, pairs: Sequence[Pair]) -> list[str]:
    """Greedy conversions decoded from the encoder's mean (no sampling), reading the source words when the decoder
    attends."""
    batch = make_batch([p.source for p in pairs])
    mu, _, source = model.encode_source(batch.chars, batch.lengths, torch.tensor([p.src for p in pairs]))
    return model.generate(mu, torch.tensor([p.tgt for p in pairs]), source=source)
