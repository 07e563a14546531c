"""Study throughput: the same small study with 1 and with 2 worker processes, and MLflow's share of trial time.

`python -m benchmarks.study_scaling [--trials 8] [--epochs 4] [--verbs 400]`

Each study runs as the user would run it (`python -m studies.run`), in a temporary folder with its own journal
and MLflow store. Printed: the wall time of each command, the time from the first trial's start to the last
trial's end (process start-up and MLflow's database creation excluded), both speed-ups, and the time workers
spent in MLflow calls as a share of trial time (the `tracking_s` and `wall_s` attributes of every trial).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from benchmarks.throughput import machine_index
from cvae.config import PROJECT_ROOT
from studies import contract


def write_spec(folder: Path, *, trials: int, epochs: int, verbs: int) -> Path:
    spec = {
        "extends": str(PROJECT_ROOT / "experiments" / "baseline.yaml"),
        "name": "scaling",
        "data": {"max_verbs": verbs, "heldout": None, "val_pairs": 50},
        "model": {"hidden_size": 128, "embed_size": 64},
        "train": {"epochs": epochs, "batch_size": 32},
        "search": {"optim.lr": {"choices": [round(0.002 + 0.001 * i, 4) for i in range(trials)]}},
        "study": {"name": "scaling", "sampler": "grid", "seeds": [0], "workers": 1},
    }
    path = folder / "scaling.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_study(folder: Path, spec: Path, *, workers: int) -> dict[str, float]:
    journal = folder / f"w{workers}.journal"
    command = [sys.executable, "-m", "studies.run", str(spec), "--workers", str(workers), "--no-report",
               "--study-name", f"scaling-w{workers}", "--storage", str(journal),
               "--tracking-uri", f"sqlite:///{folder / f'w{workers}.db'}"]
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name=f"scaling-w{workers}", storage=storage).trials
    done = [t for t in trials if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    trial_s = sum(t.user_attrs.get(contract.WALL_S, 0.0) for t in done)
    tracking_s = sum(t.user_attrs.get(contract.TRACKING_S, 0.0) for t in done)
    return {"wall": wall, "span": span, "trials": len(done), "trial_s": trial_s, "tracking_s": tracking_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--verbs", type=int, default=400)
    args = parser.parse_args(argv)
    print(machine_index(), flush=True)
    with tempfile.TemporaryDirectory(prefix="cvae-scaling-") as tmp:
        folder = Path(tmp)
        spec = write_spec(folder, trials=args.trials, epochs=args.epochs, verbs=args.verbs)
        one = run_study(folder, spec, workers=1)
        two = run_study(folder, spec, workers=2)
    for workers, figures in ((1, one), (2, two)):
        print(f"{workers} worker(s): {figures['trials']:.0f} trials, command {figures['wall']:.1f} s, "
              f"first trial start to last trial end {figures['span']:.1f} s", flush=True)
    print(f"speed-up, command wall time: {one['wall'] / two['wall']:.2f}x")
    print(f"speed-up, trial span:        {one['span'] / two['span']:.2f}x")
    for workers, figures in ((1, one), (2, two)):
        share = figures["tracking_s"] / figures["trial_s"] if figures["trial_s"] else float("nan")
        print(f"MLflow logging with {workers} worker(s): {figures['tracking_s']:.2f} s of {figures['trial_s']:.1f} s"
              f" trial time ({100 * share:.2f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
