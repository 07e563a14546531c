"""`python -m studies.run SPEC`: validate a study spec, create or resume its Optuna study, train every trial in
worker processes, log everything to MLflow, and print the best configurations.

    python -m studies.run smoke.yaml --workers 2
    python -m studies.run kl_ablation.yaml --set train.epochs=5 --trials 10 --study-name kl_quick

SPEC is found as given or under experiments/. Everything is validated before any storage is touched: bad
input is one line on stderr naming the file and key, exit status 2, and nothing created. Rerunning the same
command resumes the study. Exit status: 0 done, 1 a worker died (rerun to resume), 2 bad input, 130 interrupted.
With an RDB --storage (PostgreSQL), any number of machines run the same command on one study at once
(README: Scaling out); --create-only creates it, and its queue, without training.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import signal
import sys
import threading
from contextlib import nullcontext
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.live import Live

from cvae.cli import ArgumentParser, add_set_argument, check_output, run_command
from cvae.device import assign_gpus
from cvae.errors import ConfigError
from cvae.paths import expand
from cvae.scoring import Status
from studies import contract, preflight, secrets, tracking, worker
from studies.contract import Phase
from studies.preflight import check_data, check_devices, check_storage
from studies.queue.claim import pending, prepare
from studies.queue.locks import FileLock, study_lock
from studies.queue.storage import default_journal, is_rdb, lock_path, open_storage, repair_journal, storage_label
from studies.queue.trials import open_study, ranked_configurations, to_confirm, trial_params
from studies.spec import SEED_KEY, Spec, load_spec
from studies.ui.display import Board, summary, ui_command

CRASHES_SHOWN = 5
"""Failed (crashed) trials listed, with where their traceback is, at the end of a phase."""
LOG_WIDTH = 140
"""Columns of the output when it goes to a file or a pipe (rich would fold the summary table at 80)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m studies.run", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="study spec YAML (as given, or under experiments/)")
    add_set_argument(parser, example="train.epochs=5 study.seeds=[0,1]")
    parser.add_argument("--trials", type=int, help="number of configurations (study.trials)")
    parser.add_argument("--workers", type=int, help="worker processes (study.workers)")
    parser.add_argument("--study-name", help="study name (study.name; default: the spec's)")
    parser.add_argument("--storage", help="Optuna storage: RDB URL (sqlite:///..., postgresql+psycopg://...) or "
                                          "journal file (default: mlruns/optuna/<study>.journal)")
    tracking.add_tracking_argument(parser)
    parser.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    parser.add_argument("--create-only", action="store_true",
                        help="create the study (or check it), enqueue its trials and its MLflow parent run; train "
                             "nothing (scaling out: then the same command without it on every machine)")
    return parser.parse_args(argv)


def validate(args: argparse.Namespace) -> tuple[Spec, str]:
    """Spec, data files, storage and tracking URI, all checked without side effects; -> (spec, storage)."""
    overrides = list(args.overrides)
    for value, key in ((args.trials, "study.trials"), (args.workers, "study.workers"),
                       (args.study_name, "study.name")):
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    spec = load_spec(args.spec, overrides=overrides)
    check_data(spec)
    preflight.check_resources(spec)
    if not args.create_only:  # this machine trains: it must have the device (a login node need not)
        check_devices(spec)
    storage = str(default_journal(spec.name)) if args.storage is None else args.storage  # '' is refused
    preflight.check_tracking_uri(args.tracking_uri)
    check_storage(storage, tracking_uri=args.tracking_uri)
    if not is_rdb(storage):
        storage = str(expand(storage))  # a journal path: `~` is the home folder, as in every path
    preflight.probe_tracking_store(args.tracking_uri)  # unreachable or read-only: exit 2 before anything is made
    preflight.probe_storage(storage)
    if not (args.no_report or args.create_only):  # written once the study is done: checked before it starts
        check_output(Path("reports") / spec.name, flag="report folder", folder=True)
    return spec, storage


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C must close the study cleanly even when we were started with SIGINT ignored (a background job of a
    # non-interactive shell inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler)
    # SIGTERM (kill, a scheduler's stop, a closing terminal session) is handled as Ctrl-C is
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminated)
    secrets.hide_secrets(args.storage, args.tracking_uri)  # from here on, no password is printed or logged
    return run_command(lambda: study(args, argv), prog="studies.run")


def study(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Validate everything, then create or resume the study and run it; -> the exit status (130: interrupted)."""
    spec, storage = validate(args)
    worker.quiet_logs()
    running = FileLock(lock_path(storage=storage, study=spec.name, kind="run"))  # journal: one run at a time
    if not is_rdb(storage) and not running.acquire(blocking=False):
        raise ConfigError(f"{spec.path}: study {spec.name!r} is being run by another process right now")
    try:  # a ConfigError from here: storage unreachable, or an existing study made from another spec
        code = execute(spec=spec, storage=storage, tracking_uri=args.tracking_uri, report=not args.no_report,
                       create_only=args.create_only)
    except KeyboardInterrupt:  # Ctrl-C while starting up or summarising; the workers' own is handled in there
        code = 130
    finally:
        running.release()
    if code == 130:
        again = shlex.join(sys.argv[1:] if argv is None else argv)
        print(f"interrupted: finished trials are saved; resume with: python -m studies.run {again}", file=sys.stderr)
    return code


def execute(*, spec: Spec, storage: str, tracking_uri: str, report: bool, create_only: bool = False) -> int:
    """Create or resume the study, run the workers with a live display, print the summary; then confirm the top
    configurations on fresh seeds (resumed the same way), and build the report."""
    console = Console(width=None if sys.stdout.isatty() else LOG_WIDTH)
    code, study, study_run = run_phase(spec=spec, storage=storage, tracking_uri=tracking_uri, console=console,
                                       create_only=create_only)
    if create_only or study is None or study_run is None:
        return code
    console.print(summary(spec=spec, trials=study.get_trials(deepcopy=False)))
    if code == 0 and spec.settings.confirm.top:
        code = confirm(spec=spec, study=study, storage=storage, tracking_uri=tracking_uri, console=console)
    see = ui_command(tracking_uri, study_run.experiment_id, study=study_run.study)
    console.print(f"see every run: {see}", markup=False, soft_wrap=True)
    tracking.end_study(study_run, status={0: "FINISHED", 130: "KILLED"}.get(code, "FAILED"))
    if report and code == 0:
        make_report(spec=spec, tracking_uri=tracking_uri, console=console)
    return code


def confirm(*, spec: Spec, study: optuna.Study, storage: str, tracking_uri: str, console: Console) -> int:
    """Retrain the search's top qualifying configurations on `study.confirm.seeds` (winner's curse)."""
    ranked = ranked_configurations(trials=study.get_trials(deepcopy=False), objective=spec.settings.objective,
                                   rank_by=spec.settings.rank_by)
    chosen = to_confirm(ranked, top=spec.settings.confirm.top, within=spec.settings.confirm.within)
    top = [item.trials for item in chosen]
    if not top:
        console.print("no configuration qualifies (most seeds of each collapsed, diverged, sat in a prior hole or "
                      "overflowed): nothing to confirm, and no winner to recommend")
        return 0
    configs = [{k: v for k, v in trial_params(members[0]).items() if k != SEED_KEY} for members in top]
    confirmation = spec.confirmation(configs)
    dropped = min(spec.settings.confirm.top, sum(item.ok for item in ranked)) - len(configs)
    price = (f" ({dropped} more of the top {spec.settings.confirm.top} lie more than "
             f"study.confirm.within={spec.settings.confirm.within} below the leader)" if dropped else "")
    console.print(f"confirming the top {len(configs)} configuration(s){price} on fresh seeds "
                  f"{list(confirmation.settings.seeds)}")
    code, confirmed, _ = run_phase(spec=confirmation, storage=storage, tracking_uri=tracking_uri, console=console)
    if confirmed is not None:
        console.print(summary(spec=confirmation, trials=confirmed.get_trials(deepcopy=False)))
    return code


def run_phase(*, spec: Spec, storage: str, tracking_uri: str, console: Console,
              create_only: bool = False) -> tuple[int, optuna.Study | None, tracking.StudyRun | None]:
    """One Optuna study (the search, or its confirmation) trained to the end: -> (exit status, study, parent run).
    Both phases log to one MLflow experiment and parent run, named after the search."""
    label = storage_label(storage)
    if not is_rdb(storage) and (dropped := repair_journal(Path(storage))):
        console.print(f"journal {label}: dropped its last record, cut short by a crash ({dropped} bytes); the trial "
                      "it belonged to is trained again", markup=False)
    opened = open_storage(storage, heartbeat=spec.settings.heartbeat if is_rdb(storage) else None)
    claim_lock = lock_path(storage=storage, study=spec.name, kind="claim")
    with study_lock(opened, spec.name, fallback=claim_lock):  # machines starting at once: one study, one parent run
        study = open_study(spec=spec, storage=opened, label=label)
        study_run = tracking.start_study(tracking_uri=tracking_uri, study=spec.name.removesuffix("-confirm")
                                         if spec.phase == Phase.CONFIRM else spec.name,
                                         objective=spec.settings.objective, spec_path=spec.path, storage=label,
                                         rank_by=spec.settings.rank_by)
        stale = prepare(study=study, spec=spec)
        # runs of trials failed for a dead worker: here (a journal's resume), or by heartbeat on any machine
        tracking.reconcile(study_run, failed=_failed(study), phase=spec.phase)
    board = Board(spec=spec, trials=study.get_trials(deepcopy=False), console=console, live=console.is_terminal)
    if stale:
        board.say(f"resuming: {len(stale)} trial(s) left running by a process that died were failed and re-enqueued")
    todo = pending(study=study, spec=spec)
    if create_only:
        board.say(f"study {spec.name}: created, {todo} trial(s) to run · storage {label} · "
                  f"tracking {secrets.redact(tracking_uri)}; nothing trained (--create-only)")
        return 0, None, study_run
    elsewhere = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) if is_rdb(storage) else 0
    n_workers = min(spec.settings.workers, todo + elsewhere)  # RDB: workers also wait to take over dead trials
    board.say(f"study {spec.name}: {todo} trial(s) to run on {n_workers} worker(s) · "
              f"storage {label} · tracking {secrets.redact(tracking_uri)}")
    code = 0
    if n_workers:
        job = worker.Job(spec=spec, storage=storage, study_run=study_run, index=0, claim_lock=claim_lock)
        code = run_workers(job=job, n_workers=n_workers, board=board)
    if is_rdb(storage):  # trials failed by heartbeat while this machine's workers ran
        tracking.reconcile(study_run, failed=_failed(study), phase=spec.phase)
    board.say(board.headline())
    crashed = [t for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get(contract.STATUS) == Status.FAILED and t.user_attrs.get(contract.ERROR)]
    for trial in crashed[:CRASHES_SHOWN]:  # where each crash's traceback is (its run's traceback.txt)
        board.say(f"trial {trial.number} failed: {trial.user_attrs[contract.ERROR]}")
    if len(crashed) > CRASHES_SHOWN:
        board.say(f"... and {len(crashed) - CRASHES_SHOWN} more failed trial(s): see the runs tagged "
                  f"{contract.TAG_STATUS}=failed in MLflow")
    return code, study, study_run


def _failed(study: optuna.Study) -> set[int]:
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}


def run_workers(*, job: worker.Job, n_workers: int, board: Board) -> int:
    """Start the worker processes (spawn), show their progress until all are gone; -> exit status."""
    context = multiprocessing.get_context("spawn")
    processes, pipes = [], []
    gpus = assign_gpus(job.spec.base.train.device, n_workers)  # round-robin: each worker sees one GPU
    for index, gpu in enumerate(gpus, start=1):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=worker.main, args=(replace(job, index=index, gpu=gpu), sender),
                                  name=f"study-worker-{index}")
        process.start()
        sender.close()
        processes.append(process)
        pipes.append(receiver)
    interrupted = False
    with Live(board, console=board.console, refresh_per_second=4) if board.live else nullcontext():
        try:
            _pump(pipes, board)
        except KeyboardInterrupt:
            interrupted = True
            signal.signal(signal.SIGINT, worker.ignore_signal)  # let the workers finish recording
            signal.signal(signal.SIGTERM, worker.ignore_signal)
            board.say("interrupted: the workers record their current trial as failed, then stop")
            for process in processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGINT)  # type: ignore[arg-type]  # alive: it has a pid
            _pump(pipes, board)
    lost = []
    for index, process in enumerate(processes, start=1):
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join()
        if process.exitcode:
            trials = [n for n, row in board.running.items() if row.get("worker") == index]
            how = f"signal {-process.exitcode}" if process.exitcode < 0 else f"status {process.exitcode}"
            lost.append(f"worker {index} (pid {process.pid}) ended with {how}"
                        + (f" during trial {trials[0]}" if trials else ""))
    for line in lost:
        board.say(f"{line}; rerun the same command to resume the study")
    return 130 if interrupted else 1 if lost else 0


def _pump(pipes: list[Connection], board: Board) -> None:
    """Hand every worker message to the board until every worker's pipe is closed."""
    while pipes:
        for pipe in wait(pipes, timeout=0.5):
            try:
                board.handle(pipe.recv())  # type: ignore[union-attr,call-arg,arg-type]  # wait() gives pipes
            except (EOFError, OSError):
                pipes.remove(pipe)  # type: ignore[arg-type]


def make_report(*, spec: Spec, tracking_uri: str, console: Console) -> None:
    """Build the study's report (reports/<study>/); a failure is only a warning: the study is done and recorded."""
    from studies.report import build_report  # matplotlib and seaborn only load when a report is made

    try:
        out = build_report(study=spec.name, tracking_uri=tracking_uri, out=Path("reports") / spec.name)
    except Exception as exc:  # noqa: BLE001
        console.print(f"report not made: {exc}", markup=False)
        return
    console.print(f"report: {out / 'report.html'} (and report.md, PNGs, CSVs)", markup=False)


if __name__ == "__main__":
    sys.exit(main())
