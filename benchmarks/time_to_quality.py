"""Time to quality: wall time until BLEU-4 >= 0.70 and Gaussian >= 0.30 (distinct rows) are first reached together.

`python -m benchmarks.time_to_quality [--spec baseline.yaml] [--seeds 0 1 2] [--set k=v ...]`

Trains the spec on one thread, evaluating every epoch (evaluation time counted), once per seed, and stops a
run at the first epoch whose test BLEU-4 and distinct-row Gaussian score both pass the lab's full-credit line
(``cvae.scoring.LAB_BLEU``, ``LAB_GAUSSIAN``: the status `works`). Next to it,
the seed-style reference loop (benchmarks.throughput) is timed in the same process, and its time for the same
number of epochs is estimated from its words/s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.throughput import reference_words_per_s
from cvae import names
from cvae.cli import add_set_argument
from cvae.configfile import load_config
from cvae.data import Data
from cvae.scoring import LAB_BLEU, LAB_GAUSSIAN
from cvae.trainer import EpochRecord, fit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="baseline.yaml")
    add_set_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--reference-words", type=int, default=300)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    base = load_config(args.spec, overrides=args.overrides + ["train.eval_every=1", "train.num_threads=1"])
    data = Data.load(base)
    reference = reference_words_per_s(base, data, n_words=args.reference_words, seed=0)
    print(f"seed-style reference: {reference:.1f} words/s on {len(data.words)} words "
          f"({len(data.words) / reference:.0f} s an epoch)", flush=True)
    reached: list[float] = []
    for seed in args.seeds:
        config = base.model_copy(update={"train": base.train.model_copy(update={"seed": seed})})
        started = time.perf_counter()
        hit: dict[str, float] = {}

        def stop_when_good(record: EpochRecord, hit: dict[str, float] = hit, started: float = started) -> bool:
            bleu, gaussian = record.metrics[names.TEST_BLEU], record.metrics[names.TEST_GAUSSIAN_UNIQUE]
            good = bleu >= LAB_BLEU and gaussian >= LAB_GAUSSIAN
            if good:
                hit.update(epoch=record.epoch, seconds=time.perf_counter() - started, bleu4=bleu, gaussian=gaussian)
            return good

        fit(config, callbacks=[stop_when_good], data=data)
        if hit:
            estimate = hit["epoch"] * len(data.words) / reference
            reached.append(hit["seconds"])
            print(f"seed {seed}: reached BLEU-4 {hit['bleu4']:.3f} / Gaussian (distinct) {hit['gaussian']:.2f} at "
                  f"epoch {hit['epoch']:.0f} after {hit['seconds']:.1f} s; the seed-style loop would need "
                  f"~{estimate:.0f} s"
                  f" for {hit['epoch']:.0f} epochs ({estimate / hit['seconds']:.0f}x)", flush=True)
        else:
            print(f"seed {seed}: not reached in {config.train.epochs} epochs "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
    if reached:
        print(f"time to quality: median {statistics.median(reached):.1f} s over {len(reached)} of "
              f"{len(args.seeds)} seeds that reached it")
    else:
        print("time to quality: not reached by any seed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
