"""Which Optuna pruner a study should use, measured by replaying a finished, unpruned study's learning curves.

`python -m benchmarks.pruners STUDY [--tracking-uri sqlite:///mlflow.db]`

Every search trial of STUDY (trained to its end, or to its own divergence or collapse stop) is replayed in trial
order into a fresh in-memory Optuna study per pruner (`studies.study.pruner`, as `study.pruner` builds it): its
objective at every evaluated epoch is reported as a worker reports it, and the trial stops where the pruner says
so. Printed per pruner: the epochs that would have been trained (and their share of the unpruned study's), the
trials pruned, the pruned trials that ended `works` without pruning, and whether the study's ranking
(``cvae.scoring.rank``, pruned seeds counted as pruned) keeps the unpruned winner and top 3. Replay is exact for a
single worker; with several, a pruner decides with fewer finished trials than here, so it prunes a little less.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import optuna
import pandas as pd

from benchmarks.throughput import machine_index
from cvae.errors import UserError
from cvae.names import VAL_BLEU, VAL_GAUSSIAN
from cvae.scoring import objective_score, rank
from studies import contract, preflight
from studies.queue.trials import pruner
from studies.report.read import load_curves, load_study, open_client
from studies.tracking import add_tracking_argument

PRUNERS = ("none", "settled", "median", "successive_halving", "hyperband")


@dataclass
class Replay:
    name: str
    epochs: int
    pruned: list[int]  # trial numbers
    pruned_works: int
    ranking: list[str]  # config keys, best first


def curves_of(runs: pd.DataFrame, *, client, objective: str) -> dict[int, list[tuple[int, float]]]:
    """Trial number -> [(epoch, objective from that epoch's checkpoint-choice figures)], epochs in order."""
    wide = load_curves(client=client, runs=runs[["run_id", "trial"]], keys=(VAL_BLEU, VAL_GAUSSIAN))
    out: dict[int, list[tuple[int, float]]] = {int(t): [] for t in runs["trial"]}
    for trial, epoch, bleu, gauss in wide[["trial", "epoch", VAL_BLEU, VAL_GAUSSIAN]].itertuples(
            index=False, name=None):
        if not (math.isnan(bleu) or math.isnan(gauss)):
            out[int(trial)].append((int(epoch), objective_score(bleu, gauss, objective=objective)))
    return {trial: sorted(points) for trial, points in out.items()}


def replay(name: str, *, runs: pd.DataFrame, curves: dict[int, list[tuple[int, float]]], epochs: int,
           rank_by: str, objective: str) -> Replay:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=pruner(name, epochs=epochs))
    trained, pruned = 0, []
    seeds: dict[str, list[tuple[str, float | None]]] = {}
    for row in runs.sort_values("trial").itertuples(index=False):
        trial, points = study.ask(), curves[int(row.trial)]
        stopped = None
        for epoch, value in points:
            trial.report(value, epoch)
            if trial.should_prune():
                stopped = epoch
                break
        trained += stopped if stopped is not None else int(row.epochs)
        final = _final(row, objective=objective)
        if stopped is not None:
            pruned.append(int(row.trial))
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            seeds.setdefault(row.config_key, []).append(("pruned", None))
        else:
            trial.set_user_attr(contract.STATUS, row.status)  # as a worker does: `settled` compares with `works`
            study.tell(trial, final if final is not None and math.isfinite(final) else 0.0)
            seeds.setdefault(row.config_key, []).append((row.status, final))
    works = set(runs.loc[runs["status"] == "works", "trial"].astype(int))
    return Replay(name=name, epochs=trained, pruned=pruned, pruned_works=len(works.intersection(pruned)),
                  ranking=[key for key, _, _ in rank(seeds, rank_by=rank_by)])


def _final(row, *, objective: str) -> float | None:
    bleu, gauss = getattr(row, "best_bleu", math.nan), getattr(row, "best_gauss", math.nan)
    if math.isnan(bleu) or math.isnan(gauss):
        return None
    return objective_score(bleu, gauss, objective=objective)


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(math.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pruners", description=__doc__.splitlines()[0])
    parser.add_argument("study", help="a finished study trained without pruning (the MLflow experiment)")
    add_tracking_argument(parser)
    args = parser.parse_args(argv)
    try:
        preflight.check_reader(args.tracking_uri)
        client = open_client(tracking_uri=args.tracking_uri)
        study = load_study(client=client, study=args.study)
    except UserError as exc:
        print(f"benchmarks.pruners: error: {exc}", file=sys.stderr)
        return 2
    print(machine_index(), flush=True)
    runs = study.trials[(study.trials["phase"] == "search") & study.trials["trial"].notna()].copy()
    if runs.empty or study.objective == "pareto":
        print(f"benchmarks.pruners: error: study {args.study!r} has no search trials with a single objective",
              file=sys.stderr)
        return 2
    runs["epochs"] = _numbers(runs, contract.RUN_EPOCHS_DONE).fillna(0).astype(int)
    runs["best_bleu"] = _numbers(runs, contract.BEST_VAL_BLEU)
    runs["best_gauss"] = _numbers(runs, contract.BEST_VAL_GAUSSIAN)
    epochs = int(_numbers(runs, "train.epochs").max())
    curves = curves_of(runs, client=client, objective=study.objective)
    print(f"study {args.study}: {len(runs)} search trials of up to {epochs} epochs, objective {study.objective}, "
          f"ranked by {study.rank_by}; replayed in trial order")
    results = [replay(name, runs=runs, curves=curves, epochs=epochs, rank_by=study.rank_by,
                      objective=study.objective) for name in PRUNERS]
    base = results[0]
    for result in results:
        keeps_winner = result.ranking[:1] == base.ranking[:1]
        top = len(set(result.ranking[:3]) & set(base.ranking[:3]))
        print(f"{result.name:>18}: {result.epochs} epochs ({100 * result.epochs / max(base.epochs, 1):.0f} % of "
              f"unpruned), {len(result.pruned)} trials pruned, {result.pruned_works} of them `works`; winner "
              f"{'kept' if keeps_winner else 'LOST'}, top 3: {top} of 3 kept")
    safe = [r for r in results[1:] if r.ranking[:1] == base.ranking[:1] and r.pruned_works == 0]
    if safe:
        best = min(safe, key=lambda r: r.epochs)
        print(f"cheapest pruner that keeps the winner and prunes no `works` trial: {best.name} "
              f"(saves {100 * (1 - best.epochs / max(base.epochs, 1)):.0f} % of the epochs)")
    else:
        print("no pruner keeps the winner without pruning a `works` trial: keep study.pruner: none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
