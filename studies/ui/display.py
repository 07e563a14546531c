"""What the parent shows: a live board (TTY) or plain progress lines, and the closing summary."""

from __future__ import annotations

import shlex
from collections import Counter
from typing import Any

from optuna.trial import FrozenTrial
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cvae import names
from cvae.scoring import DEFAULT_OBJECTIVE, HEALTHY, RANK_BY_TEXT, Status
from studies import contract
from studies.labels import config_name, fmt_value, mean_std_text
from studies.queue.trials import ranked_configurations, trial_params
from studies.secrets import redact
from studies.spec import BLOCKS_KEY, Spec
from studies.tracking import DEFAULT_TRACKING_URI

SHOWN = (contract.best(names.TEST_BLEU), contract.best(names.TEST_GAUSSIAN_UNIQUE), contract.best(names.TEST_GAUSSIAN))
"""The chosen checkpoint's figures a finished trial and a configuration are shown with (never ranked on)."""
TOP = 5
"""Configurations listed in the closing table."""


class Board:
    """Counts, best so far and the running trials' epochs, fed by the workers' messages."""

    def __init__(self, *, spec: Spec, trials: list[FrozenTrial], console: Console, live: bool) -> None:
        self.spec, self.console, self.live = spec, console, live
        self.total = spec.n_configs * len(spec.settings.seeds)
        self.counts: Counter[str] = Counter()
        self.best: tuple[float, int] | None = None
        self.running: dict[int, dict[str, Any]] = {}
        for trial in trials:
            if trial.state.is_finished():
                self._count(trial.state.name, trial.user_attrs.get(contract.STATUS), trial.number, trial.values)

    def handle(self, message: contract.Message) -> None:
        """One worker message."""
        number = message.trial
        if isinstance(message, contract.TrialStarted):
            self.running[number] = {"worker": message.worker, "device": message.device, "params": message.params,
                                    "epochs": message.epochs, "epoch": 0}
            self._say(f"trial {number} started · worker {message.worker} (pid {message.pid}) · "
                      f"{message.device} · {_params(message.params)}", plain_only=True)
        elif isinstance(message, contract.EpochDone):
            row = self.running.setdefault(number, {"params": {}, "epochs": "?", "worker": "?"})
            row.update(epoch=message.epoch, bleu4=message.bleu4, gaussian_unique=message.gaussian_unique)
            self._say(f"trial {number} epoch {message.epoch}/{row.get('epochs', '?')} · bleu4 {message.bleu4:.3f} · "
                      f"gaussian (distinct) {message.gaussian_unique:.2f}", plain_only=True)
        else:
            self.running.pop(number, None)
            attrs = message.attrs
            self._count(message.state, attrs.get(contract.STATUS), number, message.values)
            figures = (f" · bleu4 {attrs[SHOWN[0]]:.3f} · gaussian (distinct) {attrs[SHOWN[1]]:.2f}"
                       if SHOWN[0] in attrs else "")
            cause = attrs.get(contract.DIVERGENCE_CAUSE) or attrs.get(contract.ERROR)
            self._say(f"trial {number} {message.state} ({attrs[contract.STATUS]}){figures} · "
                      f"{message.seconds:.1f} s" + (f" · {cause}" if cause else ""))

    def say(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str, *, plain_only: bool = False) -> None:
        if not (plain_only and self.live):
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _count(self, state: str, status: str | None, number: int, values: list[float] | None) -> None:
        if status == contract.DUPLICATE:
            return
        self.counts[state] += 1
        self.counts[Status.DIVERGED] += status == Status.DIVERGED
        if state == "COMPLETE" and values and status in HEALTHY:  # a collapsed trial is never the best
            score = sum(values)
            if self.best is None or score > self.best[0]:
                self.best = (score, number)

    def headline(self) -> str:
        c = self.counts
        best = f"best {self.best[0]:.3f} (trial {self.best[1]})" if self.best else "best -"
        return (f"{self.spec.name}: {c['COMPLETE']}/{self.total} complete · {len(self.running)} running · "
                f"{c['FAIL']} failed ({c['diverged']} diverged) · {c['PRUNED']} pruned · {best}")

    def __rich__(self) -> Group:
        table = Table(box=None, header_style="bold")
        for column in ("trial", "worker", "device", "params", "epoch", "bleu4", "gaussian (distinct)"):
            table.add_column(column)
        for number, row in sorted(self.running.items()):
            table.add_row(str(number), str(row.get("worker")), str(row.get("device", "-")),
                          _params(row.get("params", {})),
                          f"{row.get('epoch', 0)}/{row.get('epochs', '?')}",
                          f"{row['bleu4']:.3f}" if "bleu4" in row else "-",
                          f"{row['gaussian_unique']:.2f}" if "gaussian_unique" in row else "-")
        return Group(Text(self.headline(), style="bold"), table)


def summary(*, spec: Spec, trials: list[FrozenTrial]) -> Table:
    """The best configurations of the search: mean ± std over seeds of the chosen-checkpoint figures, ranked as
    everywhere (``cvae.scoring``): configurations whose seeds are mostly healthy first, by mean objective on the
    checkpoint-choice figures (distinct-row Gaussian). The test BLEU-4 and Gaussian are shown, never ranked on."""
    rows = [(ok, members, [t for t in members if contract.best(names.VAL_BLEU) in t.user_attrs])
            for ok, _, members in ranked_configurations(trials=trials, objective=spec.settings.objective,
                                                     rank_by=spec.settings.rank_by)]
    objective = spec.settings.objective.replace("pareto", DEFAULT_OBJECTIVE)
    table = Table(title=f"best configurations of {spec.name} (mostly healthy seeds first, then by "
                        f"{RANK_BY_TEXT[spec.settings.rank_by]} of {objective} on the validation figures)")
    table.add_column("#", no_wrap=True)
    table.add_column("configuration", overflow="fold", ratio=1)
    for column in ("BLEU-4", "Gaussian (distinct)", "Gaussian (lab)", "seeds"):
        table.add_column(column, no_wrap=column != "seeds")
    varied = sorted({key for dim in spec.space for key in dim.targets()})
    for place, (ok, members, scored) in enumerate(rows[:TOP], start=1):
        flat = spec.config_for(trial_params(members[0])).flat()
        statuses = Counter(t.user_attrs.get(contract.STATUS, "?") for t in members)
        figures = {name: [t.user_attrs[name] for t in scored if name in t.user_attrs] for name in SHOWN}
        table.add_row(str(place) if ok else "–", config_name(flat, varied=varied),
                      *[mean_std_text(figures[name], digits=2) for name in SHOWN],
                      ", ".join(f"{k} {n}" for k, n in statuses.items()))
    if not any(row[0] for row in rows):
        table.caption = ("no configuration qualifies: every one has most of its seeds collapsed, diverged, in a "
                         "prior hole or overflowing; there is no winner to recommend")
    return table


def ui_command(tracking_uri: str, experiment_id: str | None = None, *, study: str | None = None) -> str:
    """How to see the study: `python -m studies.ui STUDY` (``studies.ui`` serves a local store with `mlflow ui` and
    prints the address of the study's runs table, with its figures, and of its report; a bare `mlflow ui` opens on
    MLflow 3's GenAI pages). An http(s) tracking URI is a server already: its runs table's address too. Without
    ``study``, the name of experiment ``experiment_id`` is read from the store."""
    if study is None and experiment_id is not None:
        study = _experiment_name(tracking_uri, experiment_id)
    command = f"python -m studies.ui {shlex.quote(study or 'STUDY')}"
    if tracking_uri != DEFAULT_TRACKING_URI:
        command += f" --tracking-uri {shlex.quote(redact(tracking_uri))}"
    if tracking_uri.startswith(("http://", "https://")) and experiment_id:
        return (f"{command} (the runs table with its figures), or open "
                f"{redact(tracking_uri).rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")
    return command


def _experiment_name(tracking_uri: str, experiment_id: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri).get_experiment(experiment_id).name
    except (MlflowException, OSError):  # the store went away: the command is shown with STUDY
        return None


def _params(params: dict[str, Any]) -> str:
    return " ".join(str(value) if key == BLOCKS_KEY else f"{key}={fmt_value(value)}" for key, value in params.items())
