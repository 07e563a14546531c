"""The report of a study: its findings, tables and figures as report.md, a self-contained report.html, PNGs and
CSVs, logged to the study's parent run under `report/` so that `mlflow ui` shows it. Missing data never crashes
it: a figure without data is a placeholder saying why."""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from cvae.cli import ArgumentParser, check_output, run_command
from cvae.paths import path_arg
from cvae.scoring import RANK_BY_TEXT, Status
from studies import contract, preflight
from studies.contract import Phase
from studies.labels import config_name, fmt_value, mean_std, objective_label, pow10, rate
from studies.report import document as doc
from studies.report import figures, tables
from studies.report.analysis import (
    AGGREGATED,
    aggregate,
    collapse_cells,
    confirmation_changes,
    decoder_cells,
    explosion_cells,
    explosion_pair,
    objective_score,
    varied_params,
    winner,
)
from studies.report.read import StudyRuns, load_curves, load_study, load_trace, open_client
from studies.secrets import hide_secrets, redact
from studies.tracking import add_tracking_argument

log = logging.getLogger(__name__)


def build_report(*, study: str, tracking_uri: str, out: str | Path) -> Path:
    """Write the report of ``study`` to ``out`` (created) and log it to the parent run; returns ``out``."""
    client = open_client(tracking_uri=tracking_uri)
    runs = load_study(client=client, study=study)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    everything = runs.trials
    trials = everything[everything["phase"] == Phase.SEARCH]
    configs = aggregate(everything, objective=runs.objective, rank_by=runs.rank_by)
    confirmed = aggregate(everything, objective=runs.objective, phase=Phase.CONFIRM, rank_by=runs.rank_by)
    varied = varied_params(trials)
    explosion, collapse, decoders = explosion_cells(trials), collapse_cells(trials), decoder_cells(trials)
    roles = curve_roles(configs, varied=varied)
    picked = trials[trials["config_key"].isin(roles) & trials["status"].isin(AGGREGATED)]
    curve_frame = load_curves(client=client, runs=picked[["run_id", "config_key"]].assign(
        role=picked["config_key"].map(roles)))

    paths = {name: out / f"{name}.png" for name in ("scores", "explosion_map", "explosion_trace", "collapse_map",
                                                    "decoder_map", "curves")}
    rule = everything[contract.RUN_RULE_HELDOUT_BLEU].median() if contract.RUN_RULE_HELDOUT_BLEU in everything else None
    notes = {
        "scores": figures.scores_scatter(configs=configs, path=paths["scores"],
                                         rule_heldout=None if rule is None or pd.isna(rule) else float(rule)),
        "decoder_map": figures.collapse_map(
            cells=decoders, path=paths["decoder_map"], column="decoder", title=figures.DECODER_TITLE, heldout=True,
            xlabel="decoder: what it reads besides z (z-only = share of words decoded from z alone)",
            empty="no setting of the decoder varies in this study, or none of its trials finished training"),
        "explosion_map": figures.explosion_map(cells=explosion, varied=varied, path=paths["explosion_map"]),
        "explosion_trace": figures.explosion_trace(
            traces=load_trace(client=client, pair=explosion_pair(trials)), path=paths["explosion_trace"]),
        "collapse_map": figures.collapse_map(cells=collapse, path=paths["collapse_map"]),
        "curves": figures.curves(curves=curve_frame, roles=list(roles.values()), path=paths["curves"]),
    }
    importances, importance_note = setting_importances(trials=everything, objective=runs.objective)
    if importances:
        paths["importance"] = out / "importance.png"
        figures.importance(importances=importances, path=paths["importance"])
    else:
        (out / "importance.png").unlink(missing_ok=True)  # not a stale one from an earlier report

    everything.to_csv(out / "trials.csv", index=False)
    configs.to_csv(out / "configs.csv", index=False)
    blocks = _blocks(runs=runs, configs=configs, confirmed=confirmed, varied=varied, explosion=explosion,
                     collapse=collapse, decoders=decoders,
                     paths=paths, notes=notes, importance_note=importance_note, tracking_uri=tracking_uri)
    (out / "report.md").write_text(doc.to_markdown(blocks), encoding="utf-8")
    (out / "report.html").write_text(doc.to_html(blocks, title=f"Study report: {study}"), encoding="utf-8")
    written = [out / "report.html", out / "trials.csv", out / "configs.csv", *paths.values()]
    if runs.parent_run_id:
        # the logged report.md links its figures by absolute URL: MLflow's Markdown viewer prints a relative image
        # link as text and drops data: URLs
        with tempfile.TemporaryDirectory(prefix="cvae-report-") as tmp:
            logged = Path(tmp) / "report.md"
            urls = doc.artifact_url(tracking_uri=tracking_uri, run_id=runs.parent_run_id, folder="report")
            logged.write_text(doc.to_markdown(blocks, image_url=urls), encoding="utf-8")
            _log_artifacts(client=client, run_id=runs.parent_run_id, files=[logged, *written])
    return out


def _log_artifacts(*, client: MlflowClient, run_id: str, files: list[Path]) -> None:
    try:
        for path in files:
            client.log_artifact(run_id, str(path), artifact_path="report")
    except (MlflowException, OSError) as exc:
        log.warning("report written, but not logged to the parent run %s: %s", run_id, str(exc).splitlines()[0])


def curve_roles(configs: pd.DataFrame, *, varied: list[str]) -> dict[str, str]:
    """config_key -> legend label for the best, the most explosive and the most collapsed configuration."""
    if configs.empty:
        return {}
    picks: dict[str, list[str]] = {}
    ranked = configs.dropna(subset=["objective mean"])
    ranked = ranked[ranked["qualifies"]]
    if not ranked.empty:
        picks.setdefault(ranked.iloc[0]["config_key"], []).append("best")
    diverging = configs[configs["divergence_rate"] > 0]
    # a run that diverged at once logged no curve to show
    logged = diverging[diverging[f"{contract.RUN_EPOCHS_DONE} mean"].fillna(1) > 0]
    explosive = next(frame for frame in (logged, diverging, configs) if not frame.empty).sort_values(
        ["divergence_rate", f"{contract.RUN_GRAD_NORM_MAX} median"], ascending=False, na_position="last")
    top = explosive.iloc[0]
    picks.setdefault(top["config_key"], []).append(
        "most explosive" if top["divergence_rate"] > 0 else "largest grad norm (none diverged)")
    finished = configs[configs["finished"] > 0]
    if not finished.empty:
        top = finished.sort_values(["collapse_rate", f"{contract.BEST_LATENT_KL} mean"],
                                   ascending=[False, True]).iloc[0]
        picks.setdefault(top["config_key"], []).append(
            "most collapsed" if top["collapse_rate"] > 0 else "lowest KL (none collapsed)")
    rows = configs.set_index("config_key")
    return {key: f"{' & '.join(names)}: {config_name(rows.loc[key], varied=varied)}" for key, names in picks.items()}


MIN_IMPORTANCE_CONFIGS = 3
"""Configurations with an objective that a panel of the importance figure needs."""


def setting_importances(*, trials: pd.DataFrame, objective: str) -> tuple[dict[str, dict[str, float]] | None,
                                                                          str | None]:
    """fANOVA importance (Optuna's evaluator) of the config settings a study varied, for its objective: one panel
    per block of a blocked design (over the settings inside it, a bundle's keys one by one), else one for the
    study. Read from the search trials in MLflow, so it needs no Optuna storage; -> ({panel: {setting:
    importance}}, None), or (None, why it was skipped). Never raises."""
    data = trials[trials["phase"] == Phase.SEARCH].copy()
    data["objective"] = objective_score(data, objective=objective)
    data = data.dropna(subset=["objective"])
    members = data["blocks"] if data["blocks"].map(bool).any() else None
    panels = sorted({n for names in members for n in names if n}) if members is not None else [""]
    out: dict[str, dict[str, float]] = {}
    reasons = []
    for panel in panels:
        rows = data if members is None else data[members.map(lambda m, p=panel: p in m)]
        keys = [k for k in varied_params(rows) if k in rows]
        name = f"{panel} block" if panel else objective_label(objective)
        if rows["config_key"].nunique() < MIN_IMPORTANCE_CONFIGS or not keys:
            reasons.append(f"{name}: {rows['config_key'].nunique()} configuration(s) with an objective, "
                           f"{len(keys)} varied setting(s)")
            continue
        try:
            out[name] = _fanova(rows, keys)
        except Exception as exc:  # noqa: BLE001 - importance is optional: any failure becomes a note in the report
            reasons.append(f"{name}: Optuna could not compute it ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    if not out:
        return None, ("importance needs at least "
                      f"{MIN_IMPORTANCE_CONFIGS} configurations with an objective and a varied setting ("
                      + "; ".join(reasons) + ")")
    return out, None


def _fanova(rows: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Importance of ``keys`` for `objective` over ``rows``, on an in-memory Optuna study of those trials."""
    values = {key: [fmt_value(v) for v in rows[key].astype(object)] for key in keys}
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        key: optuna.distributions.CategoricalDistribution(sorted(set(v))) for key, v in values.items()}
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={key: values[key][i] for key in keys},
                                                distributions=distributions, value=float(value))
                      for i, value in enumerate(rows["objective"])])
    return optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))


def _figures_text(row: pd.Series) -> str:
    def figure(key: str) -> str:
        return mean_std(row[f"{key} mean"], row[f"{key} std"])

    return (f"BLEU-4 {figure(contract.BEST_TEST_BLEU)}, Gaussian (distinct rows) "
            f"{figure(contract.BEST_TEST_GAUSSIAN_UNIQUE)}, Gaussian (lab) {figure(contract.BEST_TEST_GAUSSIAN)}; "
            f"seeds: {row['statuses']}")


def _findings(*, configs: pd.DataFrame, confirmed: pd.DataFrame, explosion: pd.DataFrame, collapse: pd.DataFrame,
              decoders: pd.DataFrame, varied: list[str]) -> list[str]:
    items = []
    if explosion.empty:
        items.append("**Explosion**: no trial finished, diverged or was pruned.")
    else:
        worst = explosion.sort_values(["divergence_rate", "grad_median"], ascending=False).iloc[0]
        where = f"{worst['optim.name']} at lr {worst['lr']}, clip norm {worst['clip']}"
        if worst[Status.DIVERGED]:
            items.append(f"**Explosion**: worst with {where}: {rate(worst['diverged'], worst['n'])} of trials"
                         f" diverged (median max grad norm {pow10(worst['grad_median'])}).")
        else:
            items.append(f"**Explosion**: no trial diverged; the largest median max grad norm was "
                         f"{pow10(worst['grad_median'])} ({where}).")
    if collapse.empty:
        items.append("**Collapse**: no trial finished training.")
    else:
        for kind, name in ((Status.COLLAPSED, "Collapse"), (Status.PRIOR_HOLE, "Prior hole")):
            worst = collapse.assign(_r=collapse[kind] / collapse["n"]).sort_values("_r", ascending=False).iloc[0]
            if worst[kind]:
                items.append(f"**{name}**: most with {worst['kl_group']} at latent size {worst['latent']}:"
                             f" {rate(worst[kind], worst['n'])} of finished trials (KL "
                             f"{worst['kl_mean']:.2f} nats, {worst['au_mean']:.1f} active units).")
            else:
                items.append(f"**{name}**: none of the {int(collapse['n'].sum())} finished trials.")
    if not decoders.empty:
        failed = decoders.assign(_r=(decoders[Status.COLLAPSED] + decoders[Status.PRIOR_HOLE]) / decoders["n"])
        worst, unseen = failed.sort_values("_r", ascending=False).iloc[0], failed.sort_values("heldout_mean").iloc[-1]
        items.append(f"**Decoder**: {'most failures with ' if worst['_r'] else 'no collapse or prior hole; worst '}"
                     f"{worst['decoder']} at {worst['kl_group']} ({rate(worst['collapsed'], worst['n'])} collapsed, "
                     f"{rate(worst['prior_hole'], worst['n'])} in a prior hole, KL {worst['kl_mean']:.2f} nats); "
                     f"unseen verbs best with {unseen['decoder']} at {unseen['kl_group']} (heldout BLEU-4 "
                     f"{unseen['heldout_mean']:.3f}, Gaussian {unseen['gaussian_mean']:.2f}).")
    best, source = winner(configs=configs, confirmed=confirmed)
    if best is None:
        items.append(f"**Winner**: none. {source[0].upper()}{source[1:]}.")
    else:
        searched = configs[configs["config_key"] == best["searched_key"]]
        where = "confirmed on fresh seeds" if source == Phase.CONFIRM else "search only: not confirmed on fresh seeds"
        items.append(f"**Winner** ({where}): {config_name(best, varied=varied)}: {_figures_text(best)}"
                     + (f". In the search: {_figures_text(searched.iloc[0])}" if source == Phase.CONFIRM
                        and not searched.empty else "")
                     + f". Its best checkpoint is in run `{best['best_run_id']}`.")
    return items


def _blocks(*, runs: StudyRuns, configs: pd.DataFrame, confirmed: pd.DataFrame, varied: list[str],
            explosion: pd.DataFrame, collapse: pd.DataFrame, decoders: pd.DataFrame, paths: dict[str, Path],
            notes: dict[str, str | None], importance_note: str | None, tracking_uri: str) -> list[doc.Block]:
    trials = runs.trials
    counts = Counter(trials["status"])
    status_text = ", ".join(f"{n} {status}" for status, n in counts.most_common()) or "none"
    skipped = sum(n for status, n in counts.items() if status not in AGGREGATED)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    objective = objective_label(runs.objective)

    def figure(name: str, alt: str) -> list[doc.Block]:
        note = notes.get(name)
        shown: list[doc.Block] = [doc.Image(paths[name], alt)]
        return shown + ([doc.Text(f"Placeholder: {note}.", note=True)] if note else [])

    blocks: list[doc.Block] = [
        doc.Heading(f"Study report: {runs.study}", 1),
        doc.Text(f"Objective `{objective}` · {len(trials)} trials ({status_text}) in {len(configs)} configurations"
                 f" · varied: {', '.join(f'`{k}`' for k in varied) or 'nothing'} · tracking `{redact(tracking_uri)}` · "
                 f"{when}."),
        doc.Heading("Findings"),
        doc.Bullets(_findings(configs=configs, confirmed=confirmed, explosion=explosion, collapse=collapse,
                              decoders=decoders, varied=varied)),
        doc.Heading("Leaderboard"),
        doc.Text(f"Configurations whose seeds are mostly healthy (`works` or `weak`) are ranked by the objective "
                 f"({objective}; {RANK_BY_TEXT[runs.rank_by]}) on the checkpoint-choice figures, whose Gaussian "
                 "counts distinct training rows; "
                 "the others get no rank (`–`), whatever their figures. Figures are mean ± std over the seeds that "
                 "produced a checkpoint, all from the same checkpoint; `Gaussian (lab)` is the lab's score, shown "
                 f"for comparison and never ranked on. Reuse the winner: `python -m studies.best {runs.study}`."
                 + _rule_baseline_text(runs.trials)),
        doc.Table(tables.leaderboard(configs, varied=varied, objective=runs.objective),
                  empty_note="no configuration produced a checkpoint"),
        doc.Heading("Confirmation on fresh seeds"),
        doc.Text("The top qualifying configurations of the search, retrained on seeds the search never used (a "
                 "search's best seeds flatter it: the winner's curse). The winner and its figures come from here."
                 + "".join(f" Trained with `{key}` {fmt_value(new)} (the search: {fmt_value(old)}; study.confirm.set)."
                           for key, (old, new) in confirmation_changes(runs.trials).items())),
        doc.Table(tables.leaderboard(confirmed, varied=varied, objective=runs.objective),
                  empty_note="no confirmation runs (none qualified, or study.confirm.top is 0)"),
        doc.Heading("BLEU-4 vs Gaussian score"),
        *figure("scores", "BLEU-4 vs Gaussian score per configuration"),
        doc.Heading("Where gradients explode"),
        *figure("explosion_map", "explosion map"),
        doc.Table(tables.explosion_table(explosion), empty_note="no trial to show"),
        *figure("explosion_trace", "per-step gradient norm of the most explosive configuration and its clipped twin"),
        doc.Heading("Where the posterior collapses"),
        *figure("collapse_map", "collapse map"),
        doc.Table(tables.collapse_table(collapse), empty_note="no trial finished training"),
        doc.Heading("Where the decoder bypasses the latent"),
        doc.Text("A decoder that reads its source can convert without z, and then nothing teaches z what prior "
                 "sampling needs (Bahuleyan et al. 2018); one that reads only z memorises its verbs. `unseen` is "
                 "heldout BLEU-4: verbs never seen in training."),
        *figure("decoder_map", "collapse map by decoder"),
        doc.Heading("Training curves"),
        *figure("curves", "training curves of the best, most explosive and most collapsed configurations"),
        doc.Heading("Stopped early"),
        doc.Text("Trials that ended before their last epoch: a divergence stops at its step, the collapse detector "
                 "after `train.collapse_patience` evaluated epochs of a collapsed or overflowing latent, the pruner "
                 "(`pruned`) when a trial falls far behind every trial that works; the budget went to the others."),
        doc.Table(tables.stopped_table(runs.trials), empty_note="every trial trained to its last epoch"),
        doc.Heading("Parameter importance"),
    ]
    if "importance" in paths:
        blocks.append(doc.Image(paths["importance"], "Optuna parameter importance"))
    else:
        blocks.append(doc.Text(f"Skipped: {importance_note}.", note=True))
    blocks += [
        doc.Heading("Definitions"),
        doc.Bullets([
            "A configuration is one `cvae.config_key` (the config without `train.seed`); its trials are its seeds.",
            "Statuses (`cvae.scoring`): `works` passes the lab's line (test BLEU-4 ≥ 0.70, distinct-row Gaussian ≥ "
            "0.30), `weak` is healthy but below it, `collapsed` (KL < 0.1 nats or no active unit), `prior_hole` "
            "(KL > 5 nats, good BLEU-4, noise decodes to nothing valid), `unstable` (KL or log-variance "
            "overflowing: its figures are never averaged), `diverged`, `pruned`, `failed` (a crash).",
            "Figures use trials that finished (works, weak, collapsed, prior hole, unstable), diverged or were pruned"
            + (f"; {skipped} failed or running trial(s) are left out" if skipped else "") + ".",
            "Divergence rate = diverged trials / all of them; collapse and prior-hole rates are over trials that "
            "finished training. Pruned trials and trials that diverged before their first evaluation have no "
            "checkpoint figures.",
            "Grad norms are the global L2 norm before clipping, max over an epoch (then over the run); `inf` = "
            "non-finite. KL is summed over latent dimensions, in nats.",
            "Files: `trials.csv` (one row per trial) and `configs.csv` (one row per configuration) hold every "
            "number shown.",
        ]),
    ]
    return blocks


def _rule_baseline_text(trials: pd.DataFrame) -> str:
    """The rule baseline's heldout BLEU-4 (the floor for unseen verbs), to read beside the heldout column."""
    if contract.RUN_RULE_HELDOUT_BLEU not in trials or trials[contract.RUN_RULE_HELDOUT_BLEU].isna().all():
        return ""
    values = trials[contract.RUN_RULE_HELDOUT_BLEU].dropna()
    spread = f" to {values.max():.3f}" if values.max() - values.min() > 5e-4 else ""
    return (f" Unseen verbs: the rule baseline learnt from the training file (`cvae.rules`: each ending's most "
            f"frequent rewrite) converts the heldout verbs at BLEU-4 {values.min():.3f}{spread}; compare the "
            "`heldout BLEU-4` column.")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m studies.report",
                            description="a study's runs in MLflow -> tables, figures, report.md and report.html")
    parser.add_argument("study", help="study name (the MLflow experiment)")
    parser.add_argument("--out", type=path_arg, help="output folder (default: reports/<study>/)")
    add_tracking_argument(parser)
    args = parser.parse_args(argv)
    hide_secrets(args.tracking_uri)
    out = Path("reports") / args.study if args.out is None else args.out

    def build() -> int:
        check_output(out, flag="--out" if args.out is not None else "report folder", folder=True)
        preflight.check_reader(args.tracking_uri)
        folder = build_report(study=args.study, tracking_uri=args.tracking_uri, out=out)
        print(f"report: {folder / 'report.html'} (and report.md, PNGs, CSVs)")
        return 0

    return run_command(build, prog="studies.report")
