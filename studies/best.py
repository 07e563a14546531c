"""`python -m studies.best STUDY`: the study's best configuration (objective averaged over seeds) and the run
holding its best checkpoint (the seed run with the highest objective in that configuration)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from cvae.config import ArgumentParser
from cvae.scoring import RANK_BY_TEXT
from studies.labels import config_label, fmt_value, objective_label
from studies.results import ReportError, aggregate, load_study, open_client, param_types, varied_params, winner
from studies.tables import mean_std, rate
from studies.secrets import hide_secrets
from studies.tracking import DEFAULT_TRACKING_URI
from studies import contract

WHOLE = (contract.BEST_LATENT_ACTIVE_UNITS, contract.BEST_LATENT_KL)
"""Figures printed with one decimal."""


@dataclass
class Best:
    """The best configuration of a study and the seed run that holds its best checkpoint."""

    study: str
    objective: str
    config_key: str
    label: str
    searched: dict[str, Any]
    params: dict[str, Any]
    figures: dict[str, tuple[float, float]]
    n: int
    with_checkpoint: int
    diverged: int
    run_id: str
    seed: Any
    run_objective: float
    source: str = "search"  # `confirm`: figures from the confirmation on fresh seeds
    statuses: str = ""
    rank_by: str = "mean"  # how seeds were summed up for ranking (``cvae.scoring.RANK_BY``)


def find_best(*, tracking_uri: str, study: str) -> Best:
    """The best configuration of ``study``; a ReportError when no trial has checkpoint figures yet."""
    runs = load_study(client=open_client(tracking_uri=tracking_uri), study=study)
    row, source = winner(configs=aggregate(runs.trials, objective=runs.objective, rank_by=runs.rank_by),
                         confirmed=aggregate(runs.trials, objective=runs.objective, phase="confirm",
                                             rank_by=runs.rank_by))
    if row is None:
        raise ReportError(f"study {study!r}: no winner: {source}")
    varied = varied_params(runs.trials)
    params = {key: row[key] for key in param_types() if key in row.index}
    figures = {name: (row[f"{name} mean"], row[f"{name} std"])
               for name in ("objective", contract.BEST_TEST_BLEU, contract.BEST_TEST_GAUSSIAN_UNIQUE,
                            contract.BEST_TEST_GAUSSIAN, contract.BEST_HELDOUT_BLEU, contract.BEST_LATENT_ACTIVE_UNITS,
                            contract.BEST_LATENT_KL)}
    return Best(study=study, objective=runs.objective, config_key=row["config_key"],
                label=config_label(row, varied=varied), searched={key: params[key] for key in varied}, params=params,
                figures=figures, n=int(row["n"]), with_checkpoint=int(row["objective count"]),
                diverged=int(row["diverged"]), run_id=row["best_run_id"], seed=row["best_seed"],
                run_objective=float(row["best_run_objective"]), source=source, statuses=str(row["statuses"]),
                rank_by=runs.rank_by)


def describe(best: Best, *, all_params: bool = False) -> str:
    """The text `python -m studies.best` prints."""
    figures = " · ".join(f"{name.removeprefix(contract.BEST_PREFIX)} "
                         f"{mean_std(*values, digits=1 if name in WHOLE else 3)}"
                         for name, values in best.figures.items())
    shown = best.params if all_params else best.searched
    lines = [
        f"study {best.study} · objective {objective_label(best.objective)} (ranked by {RANK_BY_TEXT[best.rank_by]})",
        f"best configuration {best.config_key}: {best.label}",
        "  figures from its confirmation on fresh seeds" if best.source == "confirm" else
        "  figures from the search (not confirmed on fresh seeds)",
        f"  {figures}",
        f"  seeds: {best.statuses}",
        f"  seeds with a checkpoint {best.with_checkpoint}/{best.n}, diverged {rate(best.diverged, best.n)}",
        "  params:" if all_params else "  searched params (the run's config.yaml artifact has them all):",
        *[f"    {key} = {fmt_value(value)}" for key, value in shown.items()],
        f"checkpoint: run {best.run_id} (seed {fmt_value(best.seed)}, objective {best.run_objective:.3f})",
        f"  python -m studies.use convert abandon --from sp --to p --run {best.run_id}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m studies.best", description=__doc__.splitlines()[0])
    parser.add_argument("study", help="study name (the MLflow experiment)")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI,
                        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING_URI})")
    parser.add_argument("--all", action="store_true", help="print every config field, not only the searched ones")
    args = parser.parse_args(argv)
    hide_secrets(args.tracking_uri)
    try:
        best = find_best(tracking_uri=args.tracking_uri, study=args.study)
    except ReportError as exc:
        print(f"studies.best: error: {exc}", file=sys.stderr)
        return 2
    print(describe(best, all_params=args.all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
