"""Trainer throughput against a seed-style loop, in one process on one thread, and on the GPU when there is one.

`python -m benchmarks.throughput [--spec baseline.yaml] [--repeats 3] [--reference-words 300] [--gpu-batch 64 512]`

(i) The reference trains the same model size on the same words the way the original lab code did: one word
per step, the encoder and decoder stepped one character at a time from Python, teacher forcing decided per
word, SGD. (ii) The project's trainer runs whole epochs of the spec on one CPU thread. Both print words/s
(median of the repeats) and the ratio is trainer / reference. (iii) Where torch sees a CUDA GPU, the same
trainer, model and data run there at each `--gpu-batch` size (larger batches are the GPU's lever), each beside
the one-thread CPU figure of the same run; where it sees none, it says so. Timings drift on a shared machine;
the ratios from one run are the figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn

from cvae import names
from cvae.cli import add_set_argument
from cvae.config import ExperimentConfig
from cvae.configfile import load_config
from cvae.data import EOS, SOS, Data, encode_word
from cvae.device import describe
from cvae.metrics import kl_per_dim
from cvae.model import CVAE
from cvae.trainer import Trainer


def reference_words_per_s(config: ExperimentConfig, data: Data, *, n_words: int, seed: int) -> float:
    """Words/s of a per-word, per-character training loop over ``n_words`` training words."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = CVAE(config.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    enc, dec = model.encoder, model.decoder
    hidden = config.model.hidden_size
    lstm = config.model.rnn == "lstm"
    picks = [rng.randrange(len(data.words)) for _ in range(n_words)]
    started = time.perf_counter()
    for index in picks:
        word, tense = data.words[index], torch.tensor([int(data.tenses[index])])
        cond = model.cond(tense)  # (1, C)
        h = torch.cat([torch.zeros(1, hidden - cond.shape[1]), cond], dim=1).unsqueeze(0)  # (1, 1, H)
        state = (h, torch.zeros_like(h)) if lstm else h
        for code in encode_word(word):
            _, state = enc.rnn(enc.embed(torch.tensor([[code]])), state)  # one character per call
        h = state[0] if lstm else state
        mu, logvar = enc.to_mu(h[0]), enc.to_logvar(h[0])  # (1, L)
        z = model.reparameterize(mu, logvar)
        zc = torch.cat([z, cond], dim=1)  # (1, L + C)
        state = dec.initial_state(zc)
        targets = encode_word(word) + [EOS]
        forced = rng.random() < 0.5
        inp, loss = torch.tensor([[SOS]]), torch.zeros(())
        for target in targets:
            out, state = dec.rnn(dec.inputs(inp, zc), state)
            logits = dec.out(out[:, 0])  # (1, V)
            loss = loss + nn.functional.cross_entropy(logits, torch.tensor([target]))
            inp = torch.tensor([[target]]) if forced else logits.argmax(dim=1, keepdim=True)
        loss = loss + 0.001 * kl_per_dim(mu, logvar).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return n_words / (time.perf_counter() - started)


def machine_index(*, n_words: int = 200, spec: str = "baseline.yaml") -> str:
    """This machine's speed today, the line every benchmark prints beside its figures: the seed-style reference loop's
    words/s on one thread (the machines vary 2-3x from day to day, so a time alone says little)."""
    config = load_config(spec)
    torch.set_num_threads(1)
    words_per_s = reference_words_per_s(config, Data.load(config), n_words=n_words, seed=0)
    return (f"machine index: the seed-style reference loop ran {words_per_s:.1f} words/s on one thread "
            f"({n_words} words of {spec}; benchmarks.throughput)")


def trainer_words_per_s(config: ExperimentConfig, data: Data, *, seed: int,
                        warmup: bool = False) -> tuple[float, float, float]:
    """(words/s of one training epoch of the project's trainer, that epoch's seconds, seconds of the evaluation
    that follows every epoch: test/heldout BLEU-4, Gaussian score, diagnostics and the checkpoint-choice figures).
    ``warmup`` first trains one untimed epoch (a GPU's kernels are chosen and compiled on first use)."""
    torch.manual_seed(seed)
    trainer = Trainer(config, data)
    if warmup:
        trainer.train_epoch(0)
    figures = trainer.train_epoch(0)
    started = time.perf_counter()
    trainer.evaluate()
    return figures[names.TRAIN_WORDS_PER_S], figures[names.TRAIN_EPOCH_TIME], time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="baseline.yaml", help="experiment whose model, data and batch size to use")
    add_set_argument(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-words", type=int, default=300, help="words per reference repeat")
    parser.add_argument("--gpu-batch", type=int, nargs="+", default=[64, 256, 1024], metavar="N",
                        help="batch sizes to time on the GPU (default: 64 256 1024)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.spec, overrides=[*args.overrides, "train.device=cpu"])
    data = Data.load(config)
    print(f"model: {config.model.rnn.upper()} hidden {config.model.hidden_size}, latent {config.model.latent_size};"
          f" {len(data.words)} training words; batch {config.train.batch_size}; teacher forcing"
          f" {config.teacher_forcing.schedule} {config.teacher_forcing.start}; 1 thread", flush=True)
    reference, trainer, with_eval, eval_share = [], [], [], []
    for repeat in range(args.repeats):
        reference.append(reference_words_per_s(config, data, n_words=args.reference_words, seed=repeat))
        words_per_s, epoch_s, eval_s = trainer_words_per_s(config, data, seed=repeat)
        trainer.append(words_per_s)
        with_eval.append(len(data.words) / (epoch_s + eval_s))
        eval_share.append(eval_s / (epoch_s + eval_s))
        print(f"repeat {repeat + 1}: reference {reference[-1]:.1f} words/s, trainer {trainer[-1]:.1f} words/s "
              f"({with_eval[-1]:.1f} counting the evaluation after the epoch, {eval_s:.2f} s)", flush=True)
    ref, ours, ours_eval = statistics.median(reference), statistics.median(trainer), statistics.median(with_eval)
    print(f"seed-style reference: {ref:.1f} words/s (median of {args.repeats})")
    print(f"project trainer:      {ours:.1f} words/s (median of {args.repeats}); {ours_eval:.1f} counting the "
          f"evaluation after every epoch ({100 * statistics.median(eval_share):.1f} % of the time)")
    print(f"ratio: {ours / ref:.1f}x (counting evaluation: {ours_eval / ref:.1f}x)")
    gpu_versus_cpu(config, data, cpu_words_per_s=ours, batches=args.gpu_batch, repeats=args.repeats)
    return 0


def gpu_versus_cpu(config: ExperimentConfig, data: Data, *, cpu_words_per_s: float, batches: list[int],
                   repeats: int) -> None:
    """The trainer on the first CUDA GPU at each batch size, against the one-thread CPU figure of this run."""
    if not torch.cuda.is_available():
        print(f"GPU: none (torch {torch.__version__} sees no CUDA device); only the CPU figures above were measured")
        return
    device = torch.device("cuda:0")
    print(f"GPU: {describe(device)}; same model and data; CPU figure: {cpu_words_per_s:.1f} words/s at batch "
          f"{config.train.batch_size} on 1 thread", flush=True)
    for batch in batches:
        gpu_config = config.model_copy(update={"train": config.train.model_copy(
            update={"device": "cuda:0", "batch_size": batch})})
        runs = [trainer_words_per_s(gpu_config, data, seed=repeat, warmup=repeat == 0) for repeat in range(repeats)]
        words_per_s = statistics.median(run[0] for run in runs)
        with_eval = statistics.median(len(data.words) / (run[1] + run[2]) for run in runs)
        print(f"GPU batch {batch}: {words_per_s:.1f} words/s (median of {repeats}; {with_eval:.1f} counting the "
              f"evaluation); ratio to 1 CPU thread: {words_per_s / cpu_words_per_s:.1f}x", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
