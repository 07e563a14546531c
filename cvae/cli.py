"""`python -m cvae.train SPEC [--set k=v ...]`: train one experiment with a progress display (no MLflow)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cvae.checkpoint import save_checkpoint
from cvae.config import ConfigError, load_config
from cvae.data import DataError
from cvae.metrics import latent_status
from cvae.train import Data, EpochRecord, fit

SHOWN = ("train/loss", "train/kl", "train/grad_norm_max", "val/bleu4", "val/gaussian", "val/active_units")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cvae.train", description=__doc__)
    parser.add_argument("spec", help="experiment YAML, as a path or a name under experiments/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set optim.lr=0.01 (repeatable)")
    parser.add_argument("--save", type=Path, metavar="PATH", help="write the chosen checkpoint here")
    return parser.parse_args(argv)


def _figures(metrics: dict[str, float]) -> str:
    return "  ".join(f"{key.split('/')[1]}={metrics[key]:.3g}" for key in SHOWN if key in metrics)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    try:
        config = load_config(args.spec, overrides=args.overrides)
        data = Data.load(config)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    if result.status == "diverged":
        out.print(f"[red]diverged[/] at step {result.diverged_step}: {result.divergence_cause}")
    if result.best_epoch is None:
        out.print("no checkpoint was evaluated")
        return 0
    table = Table(title=f"{config.name}: checkpoint of epoch {result.best_epoch} (criterion {config.train.select})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        if key.startswith("val/"):
            table.add_row(key, f"{value:.4f}")
    table.add_row("latent status", latent_status(result.metrics))
    table.add_row("status", result.status)
    table.add_row("wall time (s)", f"{result.wall_time_s:.1f}")
    out.print(table)
    out.print("BLEU-4 is greedy decoding from the encoder's mean; the Gaussian score decodes 100 prior draws.")
    if args.save:
        save_checkpoint(args.save, state_dict=result.state_dict, config=config, metrics=result.metrics,
                        epoch=result.best_epoch)
        out.print(f"checkpoint written to {args.save}")
    return 0
