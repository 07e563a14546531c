"""What the parent shows: the board fed by worker messages, the closing summary, the `mlflow ui` hint."""

from __future__ import annotations

import io

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

from cvae import names
from studies import contract
from studies.ui.display import Board, summary, ui_command
from studies.spec import SEED_KEY, load_spec

SPEC = load_spec("smoke.yaml")
AE, KL1 = SPEC.space[0].choices


def trial(number: int, kl: str, seed: int, status: str, *, val: tuple[float, float] | None,
          test: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> optuna.trial.FrozenTrial:
    """A finished trial as a worker records it: params, value, status and the chosen checkpoint's figures."""
    attrs: dict = {contract.STATUS: status, contract.CONFIG_KEY: kl}
    state = TrialState.FAIL
    value = None
    if val is not None:
        attrs.update({contract.best(names.VAL_BLEU): val[0], contract.best(names.VAL_GAUSSIAN): val[1],
                      contract.best(names.TEST_BLEU): test[0], contract.best(names.TEST_GAUSSIAN_UNIQUE): test[1],
                      contract.best(names.TEST_GAUSSIAN): test[2]})
        state, value = TrialState.COMPLETE, sum(val)
    made = create_trial(params={"kl": kl, SEED_KEY: seed},
                        distributions={"kl": CategoricalDistribution([AE, KL1]),
                                       SEED_KEY: CategoricalDistribution([0, 1])},
                        value=value, state=state, user_attrs=attrs)
    made.number = number
    return made


def render(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def test_board_counts_messages_and_never_calls_a_collapsed_trial_best() -> None:
    out = io.StringIO()
    board = Board(spec=SPEC, trials=[], console=Console(file=out, width=200), live=False)
    board.handle(contract.TrialStarted(trial=0, worker=1, pid=11, params={"kl": AE, SEED_KEY: 0}, epochs=2,
                                       device="cpu"))
    board.handle(contract.EpochDone(trial=0, epoch=1, bleu4=0.5, gaussian_unique=0.25))
    assert board.running[0]["epoch"] == 1
    live = render(board)  # the live table (a terminal): one row per running trial
    assert "1/2" in live and "0.500" in live and "0.25" in live
    board.handle(contract.TrialEnded(trial=0, state="COMPLETE", values=[1.9], seconds=3.0, attrs={
        contract.STATUS: "collapsed", contract.best(names.TEST_BLEU): 0.9, contract.best(names.TEST_GAUSSIAN_UNIQUE): 0.01}))
    board.handle(contract.TrialEnded(trial=1, state="COMPLETE", values=[1.2], seconds=3.0, attrs={
        contract.STATUS: "works", contract.best(names.TEST_BLEU): 0.8, contract.best(names.TEST_GAUSSIAN_UNIQUE): 0.4}))
    board.handle(contract.TrialEnded(trial=2, state="FAIL", values=None, seconds=1.0, attrs={
        contract.STATUS: "diverged", contract.DIVERGENCE_CAUSE: "non-finite loss (nan) at epoch 1"}))
    text = out.getvalue()
    assert "trial 0 started · worker 1 (pid 11)" in text and "trial 0 epoch 1/2 · bleu4 0.500" in text
    assert "trial 0 COMPLETE (collapsed) · bleu4 0.900 · gaussian (distinct) 0.01" in text
    assert "trial 2 FAIL (diverged) · 1.0 s · non-finite loss (nan) at epoch 1" in text
    assert not board.running
    assert board.headline() == ("smoke: 2/4 complete · 0 running · 1 failed (1 diverged) · 0 pruned · "
                                "best 1.200 (trial 1)")


def test_board_resumed_counts_what_the_study_holds() -> None:
    done = [trial(0, AE, 0, "works", val=(0.6, 0.3)), trial(1, AE, 1, "diverged", val=None)]
    board = Board(spec=SPEC, trials=done, console=Console(file=io.StringIO()), live=False)
    assert board.headline().startswith("smoke: 1/4 complete · 0 running · 1 failed (1 diverged)")


def test_summary_ranks_healthy_configurations_first_and_shows_the_test_figures() -> None:
    trials = [trial(0, AE, 0, "collapsed", val=(0.99, 0.99), test=(0.1, 0.01, 1.0)),
              trial(1, AE, 1, "collapsed", val=(0.99, 0.99), test=(0.1, 0.01, 1.0)),
              trial(2, KL1, 0, "works", val=(0.8, 0.4), test=(0.9, 0.35, 0.4)),
              trial(3, KL1, 1, "works", val=(0.7, 0.4), test=(0.8, 0.45, 0.5))]
    text = render(summary(spec=SPEC, trials=trials))
    rows = [line for line in text.splitlines() if "works" in line or "collapsed" in line]
    assert len(rows) == 2 and "works 2" in rows[0] and "collapsed 2" in rows[1]
    assert rows[0].lstrip("│ ").startswith("1") and "0.85 ± 0.07" in rows[0] and "0.40 ± 0.07" in rows[0]
    assert "–" in rows[1]  # a configuration whose seeds collapsed gets no rank, whatever its objective


def test_summary_says_plainly_when_nothing_qualifies() -> None:
    trials = [trial(n, AE, n, "collapsed", val=(0.9, 0.9)) for n in (0, 1)]
    assert "no configuration qualifies" in render(summary(spec=SPEC, trials=trials))


def test_ui_command_names_the_study_the_store_and_for_a_server_its_runs_page() -> None:
    assert ui_command("sqlite:///mlflow.db", "3", study="smoke") == "python -m studies.ui smoke"
    assert ui_command("sqlite:///other.db", study="my study") == (
        "python -m studies.ui 'my study' --tracking-uri sqlite:///other.db")
    assert ui_command("http://u:secret@host:5000", "3", study="smoke") == (
        "python -m studies.ui smoke --tracking-uri 'http://u:***@host:5000' (the runs table with its figures), or "
        "open http://u:***@host:5000/#/experiments/3/runs?workflowType=machine_learning")


def test_ui_command_reads_the_study_name_from_the_store(tmp_path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = MlflowClient(uri).create_experiment("smoke")
    assert ui_command(uri, experiment_id) == f"python -m studies.ui smoke --tracking-uri {uri}"
