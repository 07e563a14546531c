"""Reuse a trained checkpoint: convert words between tenses, or sample verbs from prior noise.

    python -m studies.use convert abandon --from sp --to p (--run RUN_ID | --checkpoint PATH | --study STUDY)
    python -m studies.use sample 10 [--seed 0] (--run RUN_ID | --checkpoint PATH | --study STUDY)

`convert` prints one converted word a line; `sample` prints one draw z ~ N(0, I) a line as its 4 greedy words
in tense order `sp tp pg p` (the train.txt format). An empty generation prints as `-`. `--study` uses the run
holding the best checkpoint of the study (see `python -m studies.best`). A missing or corrupt checkpoint, an
unknown run or study, or a word with characters outside a-z is a one-line error with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from cvae.checkpoint import CheckpointError, load_checkpoint
from cvae.cli import ArgumentParser, run_command
from cvae.config import ExperimentConfig
from cvae.data import TENSES, Pair, word_problem
from cvae.device import resolve_device
from cvae.errors import UserError
from cvae.metrics import gaussian_generations
from cvae.model import CVAE, convert
from cvae.paths import path_arg
from studies import preflight
from studies.report.analysis import find_best
from studies.secrets import hide_secrets
from studies.tracking import add_tracking_argument

CHECKPOINT_ARTIFACT = "checkpoint/model.pt"
EMPTY = "-"
DEVICES = ["cpu", "auto", "cuda", *(f"cuda:{i}" for i in range(16))]


class UseError(UserError):
    """A one-line, user-facing error of this CLI."""


def load_model(*, tracking_uri: str, run: str | None = None, checkpoint: str | Path | None = None,
               study: str | None = None, device: str = "cpu") -> tuple[CVAE, ExperimentConfig]:
    """The model (eval mode, on ``device``) and config from a file, a run's `checkpoint/model.pt`, or a study's
    best run."""
    where = resolve_device(device, key="--device")  # before anything is read or downloaded
    if checkpoint is not None:
        model, config, _ = load_checkpoint(checkpoint, device=where)
        return model, config
    if run is None and study is None:
        raise UseError("give one of --run, --checkpoint or --study")
    preflight.check_reader(tracking_uri)  # a missing sqlite store is an error, not a new empty one
    if run is None and study is not None:
        run = find_best(tracking_uri=tracking_uri, study=study).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run, artifact_path=CHECKPOINT_ARTIFACT, dst_path=tmp,
                                                       tracking_uri=tracking_uri)
        except (MlflowException, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UseError(f"run {run}: no {CHECKPOINT_ARTIFACT} artifact to load ({reason[:160]})") from None
        model, config, _ = load_checkpoint(path, device=where, shown=f"run {run}: artifact {CHECKPOINT_ARTIFACT}")
    return model, config


def check_word(word: str) -> str:
    if (problem := word_problem(word)) is not None:
        raise UseError(problem)
    return word


def convert_words(*, model: CVAE, words: list[str], source: str, target: str) -> list[str]:
    """Greedy conversions of ``words`` from tense ``source`` to ``target`` (decoded from the encoder's mean)."""
    pairs = [Pair(check_word(w), w, TENSES.index(source), TENSES.index(target)) for w in words]
    return convert(model, pairs)


def sample_words(*, model: CVAE, config: ExperimentConfig, n: int, seed: int) -> list[tuple[str, ...]]:
    """``n`` draws z ~ N(0, I), each decoded greedily under the 4 tenses."""
    return gaussian_generations(model.sample, n=n, latent_size=config.model.latent_size, seed=seed)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    source = ArgumentParser(add_help=False)
    group = source.add_mutually_exclusive_group(required=True)
    group.add_argument("--run", help="MLflow run id holding checkpoint/model.pt")
    group.add_argument("--checkpoint", type=path_arg, help="checkpoint file (cvae.checkpoint format)")
    group.add_argument("--study", help="use the best checkpoint of this study")
    add_tracking_argument(source)
    source.add_argument("--device", default="cpu", choices=DEVICES, metavar="DEVICE",
                        help="where the model runs: cpu (default: a few words are fastest there), auto, cuda, "
                             "cuda:N")
    parser = ArgumentParser(prog="python -m studies.use", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", parents=[source], help="convert words from one tense to another")
    conv.add_argument("words", nargs="+", help="lower-case words (a-z)")
    conv.add_argument("--from", dest="source", required=True, choices=TENSES, help="tense of the words")
    conv.add_argument("--to", dest="target", required=True, choices=TENSES, help="tense to convert to")
    sample = commands.add_parser("sample", parents=[source], help="generate verbs from prior noise")
    sample.add_argument("n", type=_positive, help="number of draws")
    sample.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    hide_secrets(args.tracking_uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr to one line
    return run_command(lambda: use(args), prog="studies.use")


def use(args: argparse.Namespace) -> int:
    """Load the model, then print one line per converted word or per prior draw."""
    if args.command == "convert":
        for word in args.words:
            check_word(word)  # before loading anything
    try:
        model, config = load_model(tracking_uri=args.tracking_uri, run=args.run, checkpoint=args.checkpoint,
                                   study=args.study, device=args.device)
    except CheckpointError as exc:  # of --checkpoint, or of the run's artifact
        raise CheckpointError(f"{'--checkpoint ' if args.checkpoint else ''}{exc}") from None
    if args.command == "convert":
        lines = convert_words(model=model, words=args.words, source=args.source, target=args.target)
    else:
        lines = [" ".join(w or EMPTY for w in draw)
                 for draw in sample_words(model=model, config=config, n=args.n, seed=args.seed)]
    for line in lines:
        print(line or EMPTY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
