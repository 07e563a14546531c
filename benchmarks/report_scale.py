"""`python -m benchmarks.report_scale`: time `studies.report` over a synthetic study of 1000 trials.

Builds a real sqlite MLflow store in a temporary folder,
with trials that follow docs/tracking-contract.md (studies/testing.py), then times the report alone.
Goal: the report takes <= 30 s. Prints the build time, the report time of each repetition and their median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import machine_index
from studies.report.build import build_report
from studies.testing import scale_trials, write_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials in the synthetic study (default 1000)")
    parser.add_argument("--epochs", type=int, default=3, help="step-metric epochs per trial (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="report repetitions (default 3)")
    parser.add_argument("--keep", type=Path, help="build the store here and keep it (default: a temp folder)")
    args = parser.parse_args(argv)
    print(machine_index(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        started = time.perf_counter()
        trials = scale_trials(args.trials, epochs=args.epochs)
        write_study(tracking_uri=uri, study="scale", trials=trials, artifact_location=root / "artifacts")
        print(f"built a store of {len(trials)} trials x {args.epochs} epochs in {time.perf_counter() - started:.1f} s")
        times = []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            build_report(study="scale", tracking_uri=uri, out=root / f"report-{repeat}")
            times.append(time.perf_counter() - started)
            print(f"report {repeat + 1}/{args.repeats}: {times[-1]:.2f} s")
    print(f"report over {len(trials)} trials: median {statistics.median(times):.2f} s (goal <= 30 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
