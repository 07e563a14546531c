"""`python -m cvae.train SPEC [--set k=v ...]`: train one experiment with a progress display (no MLflow)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cvae import names
from cvae.checkpoint import save_checkpoint
from cvae.cli import ArgumentParser, add_set_argument, check_output, run_command
from cvae.configfile import load_config
from cvae.data import Data, DataError
from cvae.device import resolve_device
from cvae.errors import ConfigError
from cvae.paths import path_arg
from cvae.resources import check_resources
from cvae.scoring import Status, run_status
from cvae.trainer import TRACE_KEYS, EpochRecord, TrainResult, fit

SHOWN = (names.TRAIN_LOSS, names.TRAIN_KL, names.TRAIN_GRAD_NORM_MAX, names.TEST_BLEU, names.TEST_GAUSSIAN,
         names.LATENT_ACTIVE_UNITS)
"""Figures shown after each evaluated epoch."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m cvae.train", description=__doc__)
    parser.add_argument("spec", help="experiment YAML, as a path or a name under experiments/")
    add_set_argument(parser, example="optim.lr=0.01")
    parser.add_argument("--save", type=path_arg, metavar="PATH", help="write the chosen checkpoint here")
    return parser.parse_args(argv)


def _figures(metrics: dict[str, float]) -> str:
    return "  ".join(f"{key}={metrics[key]:.3g}" for key in SHOWN if key in metrics)


TRACE_ROWS = 12
"""Steps of a diverged run's trace printed: the last ones before the non-finite step, and the first."""


def explain_divergence(out: Console, result: TrainResult) -> None:
    """Why a run diverged: the step, the cause, the first non-finite tensor and the per-step trace up to it."""
    out.print(f"[red]diverged[/] at step {result.diverged_step}: {result.divergence_cause}")
    if result.nonfinite:
        out.print(f"first non-finite tensor: {result.nonfinite}")
    trace = result.trace
    if not trace:
        return
    table = Table(title="the steps before it (pre-clip gradient norms; loss and KL of the batch)")
    table.add_column("step", justify="right")
    for key in TRACE_KEYS:
        table.add_column(key.replace("_", " "), justify="right")
    shown = trace if len(trace) <= TRACE_ROWS else [trace[0], *trace[-(TRACE_ROWS - 1):]]
    for i, point in enumerate(shown):
        if i == 1 and len(trace) > TRACE_ROWS:
            table.add_row("…", *["" for _ in TRACE_KEYS])
        table.add_row(str(int(point["step"])), *[f"{point[k]:.3g}" if k in point else "" for k in TRACE_KEYS])
    out.print(table)
    out.print("Clipping the gradients (optim.clip_norm) or a lower learning rate (optim.lr) usually prevents it.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(lambda: train(args), prog="cvae.train")


def train(args: argparse.Namespace) -> int:
    """Check everything, train, print the checkpoint's figures (and the divergence, if any), save it."""
    console = Console(stderr=True)
    config = load_config(args.spec, overrides=args.overrides)
    check_resources(config, source=str(args.spec))
    try:
        resolve_device(config.train.device)
    except ConfigError as exc:
        raise ConfigError(f"{args.spec}: {exc}") from None
    if args.save is not None:  # before minutes of training, not after
        check_output(args.save, flag="--save")
    try:
        data = Data.load(config)
    except DataError as exc:  # names the key (data.train, ...) and the file and line at fault
        raise DataError(f"{args.spec}: {exc}") from None
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[figures]}"))
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(config.name, total=config.train.epochs, figures="")

        def on_step(epoch: int, done: int, total: int) -> None:
            bar.update(task, completed=epoch + done / total)

        def on_epoch(record: EpochRecord) -> None:
            bar.update(task, completed=record.epoch, figures=_figures(record.metrics))
            if not console.is_terminal:
                print(f"epoch {record.epoch}: {_figures(record.metrics)}", file=sys.stderr, flush=True)

        result = fit(config, callbacks=[on_epoch], data=data, progress=on_step)
    out = Console()
    if result.status == Status.DIVERGED:
        explain_divergence(out, result)
    elif result.stopped_epoch is not None:
        out.print(f"[yellow]stopped at epoch {result.stopped_epoch}[/]: the posterior {result.status} "
                  f"(train.collapse_patience={config.train.collapse_patience} evaluated epochs in a row)")
    if result.best_epoch is None:
        out.print("no checkpoint was evaluated (the run stopped before its first evaluation)")
        return 0
    table = Table(title=f"{config.name}: checkpoint of epoch {result.best_epoch} (criterion {config.train.select})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        if not key.startswith("train/"):  # the checkpoint's evaluation: test, heldout, val and latent figures
            table.add_row(key, f"{value:.4f}")
        if key == names.HELDOUT_BLEU and result.rule_heldout_bleu4 is not None:  # the floor for unseen verbs
            table.add_row(f"{key}, rule baseline", f"{result.rule_heldout_bleu4:.4f}")
    table.add_row("decoder (model.decoder)", config.model.decoder)
    table.add_row("status", run_status(status=result.status, metrics=result.metrics))
    table.add_row("wall time (s)", f"{result.wall_time_s:.1f}")
    table.add_row("device", result.device)
    out.print(table)
    sampled = ("model.sampling lemma: the simple present from z, the other tenses read from it"
               if config.model.samples_via_lemma
               else "every tense from (z, tense) alone")
    out.print(f"BLEU-4 is greedy decoding from the encoder's mean; the Gaussian score decodes 100 prior draws "
              f"({sampled}).")
    if args.save and result.state_dict is not None:
        save_checkpoint(args.save, state_dict=result.state_dict, config=config, metrics=result.metrics,
                        epoch=result.best_epoch)
        out.print(f"checkpoint written to {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
