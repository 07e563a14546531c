"""Where a trial's seconds go: training steps, prior fill, each part of the per-epoch evaluation.

`python -m benchmarks.profile [--spec kl_ablation.yaml] [--epochs 3] [--set k=v ...]`

Trains the spec's configuration (a study spec gives its base) for a few epochs on one thread under Python's
profiler and prints, for each part of a trial, its cumulative seconds and its share of the whole: optimizer steps,
the prior-fill decoder pass inside them, the codes prior fill needs, and the evaluation's pieces (the latent
statistics over every training word, each set of conversions, each noise draw). The profiler's overhead is on
the Python side and is spread over every part alike. The machine index is printed beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from benchmarks.throughput import machine_index
from cvae import evaluation, metrics, model, trainer
from cvae.cli import add_set_argument
from cvae.config import ExperimentConfig
from cvae.configfile import build_config, find_spec_file, load_config
from cvae.data import Data
from cvae.yamlfile import load_yaml
from studies.spec import load_spec

STUDY_KEYS = {"study", "search", "blocks"}
"""Keys that make a YAML file a study spec rather than an experiment."""

PARTS: tuple[tuple[str, object], ...] = (
    ("training epochs (steps, prior fill included)", trainer.Trainer.train_epoch),
    ("  of which prior fill (decoder pass on noise)", trainer.Trainer.prior_fill_loss),
    ("  of which codes for prior fill (encode all words)", trainer.Trainer.codes),
    ("  of which hallucinated verbs (attending decoders)", trainer.Trainer.hallucination_loss),
    ("evaluation (all of it)", trainer.Trainer.evaluate),
    ("  conversions (test, heldout, validation)", model.convert),
    ("  noise decoding (Gaussian score and val/gaussian)", metrics.gaussian_generations),
    ("  checkpoint-choice figures (val conversions, their draws)", evaluation.selection_figures),
    ("  latent statistics (KL per dim, mutual information)", metrics.mutual_information),
    ("  BLEU-4 scoring (nltk)", metrics.mean_bleu4),
)
"""(label, function) of each part reported; nested parts are indented under the part that calls them, and may
overlap each other (the checkpoint-choice figures hold conversions and noise decoding of their own)."""


def _key(function: object) -> tuple[str, str]:
    code = function.__code__  # type: ignore[attr-defined]
    return code.co_filename, code.co_name


def base_config(spec: str, *, overrides: list[str]) -> ExperimentConfig:
    """An experiment file's config, or a study spec's base (its `study`, `search` or `blocks` keys set aside)."""
    if STUDY_KEYS & set(load_yaml(find_spec_file(spec)) or {}):  # the overrides apply to the base, searched or not
        return build_config(load_spec(spec).base.model_dump(mode="json"), source=spec, overrides=overrides)
    return load_config(spec, overrides=overrides)


def profile(spec: str, *, overrides: list[str], epochs: int) -> tuple[float, dict[str, float]]:
    """(wall seconds, cumulative seconds per part) of ``epochs`` training epochs, each followed by an evaluation."""
    config = base_config(spec, overrides=[*overrides, "train.num_threads=1"])
    torch.set_num_threads(1)
    data = Data.load(config)
    torch.manual_seed(config.train.seed)
    run = trainer.Trainer(config, data)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for epoch in range(epochs):
        run.train_epoch(epoch)
        run.evaluate()
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    cumulative = {(path, name): entry[3] for (path, _, name), entry in stats.items()}
    return wall, {label: cumulative.get(_key(function), 0.0) for label, function in PARTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="kl_ablation.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    add_set_argument(parser)
    args = parser.parse_args(argv)
    print(machine_index(), flush=True)
    wall, parts = profile(args.spec, overrides=args.overrides, epochs=args.epochs)
    print(f"{args.spec} {' '.join(args.overrides)}: {args.epochs} epochs, each evaluated, in {wall:.1f} s "
          f"({wall / args.epochs:.1f} s an epoch) on one thread, under the profiler")
    for label, seconds in parts.items():
        print(f"  {label:<55} {seconds / args.epochs:7.2f} s an epoch  {100 * seconds / wall:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
