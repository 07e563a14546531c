"""`python -m studies.best STUDY`: the study's best configuration (objective averaged over seeds) and the run
holding its best checkpoint (the seed run with the highest objective in that configuration)."""

from __future__ import annotations

import sys

from cvae.cli import ArgumentParser, run_command
from cvae.scoring import RANK_BY_TEXT
from studies import contract, preflight
from studies.contract import Phase
from studies.labels import fmt_value, mean_std, objective_label, rate
from studies.report.analysis import Best, find_best
from studies.secrets import hide_secrets
from studies.tracking import add_tracking_argument

WHOLE = (contract.BEST_LATENT_ACTIVE_UNITS, contract.BEST_LATENT_KL)
"""Figures printed with one decimal."""


def describe(best: Best, *, all_params: bool = False) -> str:
    """The text `python -m studies.best` prints."""
    figures = " · ".join(f"{name.removeprefix(contract.BEST_PREFIX)} "
                         f"{mean_std(*values, digits=1 if name in WHOLE else 3)}"
                         for name, values in best.figures.items())
    shown = best.params if all_params else best.searched
    lines = [
        f"study {best.study} · objective {objective_label(best.objective)} (ranked by {RANK_BY_TEXT[best.rank_by]})",
        f"best configuration {best.config_key}: {best.label}",
        "  figures from its confirmation on fresh seeds" if best.source == Phase.CONFIRM else
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
    add_tracking_argument(parser)
    parser.add_argument("--all", action="store_true", help="print every config field, not only the searched ones")
    args = parser.parse_args(argv)
    hide_secrets(args.tracking_uri)

    def show() -> int:
        preflight.check_reader(args.tracking_uri)
        print(describe(find_best(tracking_uri=args.tracking_uri, study=args.study), all_params=args.all))
        return 0

    return run_command(show, prog="studies.best")


if __name__ == "__main__":
    sys.exit(main())
