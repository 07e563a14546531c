"""The report's figures, drawn with seaborn on pyplot-free matplotlib Figures (no global state, any backend).

Each function writes one PNG and returns None, or writes a placeholder PNG saying why there was nothing to draw
and returns that reason.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter

from cvae import names
from cvae.scoring import (
    COLLAPSE_KL,
    LAB_BLEU,
    LAB_GAUSSIAN,
    PRIOR_HOLE_BLEU,
    PRIOR_HOLE_GAUSSIAN,
    PRIOR_HOLE_KL,
    Status,
)
from studies import contract
from studies.labels import pow10
from studies.report.analysis import pareto_mask

PALETTE = "colorblind"
FULL_CREDIT_BLEU, FULL_CREDIT_GAUSSIAN = LAB_BLEU, LAB_GAUSSIAN
"""The lab's full-credit line."""
CREDIT_COLOUR = "#b2182b"
DPI = 110


@contextmanager
def _style(style: str = "whitegrid") -> Iterator[None]:
    with sns.axes_style(style), sns.plotting_context("notebook", font_scale=1.15):
        yield


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")


def placeholder(*, path: Path, title: str, note: str) -> str:
    """A small PNG with the figure's title and why it could not be drawn; returns ``note``."""
    with _style():
        fig = Figure(figsize=(7, 2.2))
        ax = fig.subplots()
        ax.set_axis_off()
        ax.set_title(title, fontweight="bold")
        ax.text(0.5, 0.45, f"Nothing to draw: {note}", ha="center", va="center", wrap=True, fontsize=11,
                transform=ax.transAxes)
        _save(fig, path)
    return note


def _tick(value: float, _position: object = None) -> str:
    """Log-axis tick label: `4.5`, `100`, `1e+06`."""
    return f"{value:g}"


def _ink(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads on a cell of colour ``rgba``."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# ---------------------------------------------------------------------------------------------------------


EXPLOSION_TITLE = "Where gradients explode"


def explosion_map(*, cells: pd.DataFrame, varied: list[str], path: Path) -> str | None:
    """Heatmap lr x clip norm per optimizer: colour = fraction of seeds diverged, text = median max grad norm."""
    if cells.empty:
        return placeholder(path=path, title=EXPLOSION_TITLE, note="no finished, diverged or pruned trial")
    if "optim.lr" not in varied and "optim.clip_norm" not in varied:
        return placeholder(path=path, title=EXPLOSION_TITLE,
                           note="the study varies neither the learning rate nor the clip norm")
    optimizers = sorted(cells["optim.name"].astype(str).unique())
    lrs = list(reversed(cells["lr"].cat.categories))  # largest at the top
    clips = list(cells["clip"].cat.categories)
    with _style("white"):
        fig = Figure(figsize=(1.0 + len(optimizers) * (0.9 * len(clips) + 1.2), 1.6 + 0.55 * len(lrs)),
                     layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(optimizers), sharey=True, squeeze=False)[0])
        for ax, optimizer in zip(axes, optimizers):
            mine = cells[cells["optim.name"].astype(str) == optimizer]
            rate = mine.pivot_table(index="lr", columns="clip", values="divergence_rate", observed=True)
            grad = mine.pivot_table(index="lr", columns="clip", values="grad_median", observed=True)
            rate, grad = (table.reindex(index=lrs, columns=clips) for table in (rate, grad))
            text = grad.map(pow10).to_numpy()
            sns.heatmap(rate, ax=ax, vmin=0.0, vmax=1.0, cmap="viridis", cbar=False, annot=text, fmt="",
                        linewidths=0.5, linecolor="white", annot_kws={"fontsize": 9},
                        yticklabels=lrs)
            ax.set_facecolor("#e0e0e0")
            ax.set_title(f"optimizer: {optimizer}")
            ax.set_xlabel("")
            ax.set_ylabel("learning rate" if ax is axes[0] else "")
            ax.tick_params(axis="y", rotation=0)
        colorbar = fig.colorbar(axes[-1].collections[0], ax=list(axes), shrink=0.9, pad=0.02)
        colorbar.set_label("fraction of seeds diverged")
        fig.supxlabel("gradient clip norm (global L2 norm; none = no clipping)", fontsize=10)
        fig.suptitle(f"{EXPLOSION_TITLE}: colour = fraction of seeds diverged, text = median over seeds of the max\n"
                     "pre-clip gradient norm (L2, order of magnitude; inf = non-finite); grey = not run",
                     fontsize=10)
        _save(fig, path)
    return None


COLLAPSE_TITLE = "Where the posterior collapses"


DECODER_TITLE = "Collapse map, the decoder's side"


def collapse_map(*, cells: pd.DataFrame, path: Path, column: str = "latent",
                 xlabel: str = "latent size (dimensions)", title: str = COLLAPSE_TITLE, heldout: bool = False,
                 empty: str = "no trial finished training (all pruned, diverged or failed)") -> str | None:
    """Heatmap KL bundle x ``column`` (latent size, or the decoder): colour = active units, text = KL (nats) (and,
    with ``heldout``, heldout BLEU-4: unseen verbs), hatches = collapse/prior hole."""
    if cells.empty:
        return placeholder(path=path, title=title, note=empty)
    rows = [label for label in cells["kl_group"].cat.categories if label in set(cells["kl_group"])]
    latents = [label for label in cells[column].cat.categories if label in set(cells[column])]
    au = cells.pivot_table(index="kl_group", columns=column, values="au_mean", observed=True)
    au = au.reindex(index=rows, columns=latents)
    lookup = cells.set_index(["kl_group", column])
    norm = Normalize(vmin=0.0, vmax=max(1.0, float(np.nanmax(au.to_numpy()))))
    cmap = sns.color_palette("viridis", as_cmap=True)
    labels = []  # (row, column, text, hatch or None, cell colour)
    for i, row in enumerate(rows):
        for j, latent in enumerate(latents):
            if (row, latent) not in lookup.index:
                continue
            cell = lookup.loc[(row, latent)]
            kl, n = cell["kl_mean"], int(cell["n"])
            lines = [f"{kl:.2g}" if kl < 10 else f"{kl:.0f}"]
            if cell[Status.COLLAPSED]:
                lines.append(f"collapse {int(cell['collapsed'])}/{n}")
            if cell[Status.PRIOR_HOLE]:
                lines.append(f"hole {int(cell['prior_hole'])}/{n}")
            if heldout and not pd.isna(cell["heldout_mean"]):
                lines.append(f"unseen {cell['heldout_mean']:.2f}")
            hatch = None
            if 2 * cell[Status.COLLAPSED] >= n or 2 * cell[Status.PRIOR_HOLE] >= n:
                hatch = "//" if cell[Status.COLLAPSED] >= cell[Status.PRIOR_HOLE] else "\\\\"
            labels.append((i, j, "\n".join(lines), hatch, cmap(norm(cell["au_mean"]))))
    with _style("white"):
        fig = Figure(figsize=(max(8.0, 3.6 + 1.25 * len(latents)), 2.6 + 0.62 * len(rows)), layout="constrained")
        ax = fig.subplots()
        sns.heatmap(au, ax=ax, cmap=cmap, norm=norm, linewidths=0.5, linecolor="white",
                    cbar_kws={"label": "active units (mean over seeds)"})
        for i, j, text, hatch, colour in labels:
            ink = _ink(colour)
            if hatch:
                ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch=hatch, edgecolor=ink, linewidth=0, alpha=0.5))
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=8.5, color=ink,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor=colour, edgecolor="none") if hatch else None)
        ax.set_facecolor("#e0e0e0")
        ax.set_xticks(np.arange(len(latents)) + 0.5, [textwrap.fill(str(c), 13) for c in latents], rotation=0)
        ax.set(xlabel=xlabel, ylabel="KL schedule")
        ax.tick_params(axis="y", rotation=0)
        unseen = ", unseen = heldout BLEU-4" if heldout else ""
        fig.suptitle(f"{title}: colour = active units, text = KL (nats){unseen},\n"
                     "mean over the seeds that finished training", fontsize=10)
        legend = [Patch(facecolor="white", edgecolor="black", hatch="//",
                        label=f"most seeds collapsed (AU = 0 or KL < {COLLAPSE_KL:g} nats)"),
                  Patch(facecolor="white", edgecolor="black", hatch="\\\\",
                        label=f"most seeds in a prior hole (KL > {PRIOR_HOLE_KL:g} nats, distinct Gaussian ≤ "
                              f"{PRIOR_HOLE_GAUSSIAN:g}, BLEU-4 ≥ {PRIOR_HOLE_BLEU:g})"),
                  Patch(facecolor="#e0e0e0", edgecolor="none", label="not run, or no seed finished training")]
        fig.legend(handles=legend, loc="outside lower center", ncol=1, fontsize=8.5, frameon=False)
        _save(fig, path)
    return None


SCORES_TITLE = "BLEU-4 vs Gaussian score"


def scores_scatter(*, configs: pd.DataFrame, path: Path, rule_heldout: float | None = None) -> str | None:
    """One point per configuration (mean ± std over seeds), hue = KL bundle, marker = decoder (or optimizer when
    every configuration has one decoder), Pareto front; beside it, when the runs have heldout figures, the same
    points against heldout BLEU-4 (verbs never seen in training) with the rule baseline's line (``rule_heldout``)."""
    bleu, gauss = f"{contract.BEST_TEST_BLEU} mean", f"{contract.BEST_TEST_GAUSSIAN_UNIQUE} mean"
    gauss_std = f"{contract.BEST_TEST_GAUSSIAN_UNIQUE} std"
    held = f"{contract.BEST_HELDOUT_BLEU} mean"
    data = configs.dropna(subset=[bleu, gauss]).reset_index(drop=True)
    if data.empty:
        return placeholder(path=path, title=SCORES_TITLE, note="no configuration has a checkpoint (BLEU-4/Gaussian)")
    data["KL schedule"] = data["kl_group"].astype(str)
    decoders = data["decoder"].astype(str) if "decoder" in data else pd.Series("", index=data.index)
    marker = "decoder" if decoders.nunique() > 1 else "optimizer"
    data[marker] = decoders if marker == "decoder" else data["optim.name"].astype(str)
    hue_order = [c for c in configs["kl_group"].cat.categories if c in set(data["KL schedule"])]
    panels = [(bleu, "BLEU-4 on the test conversions (0–1)", "the lab's test (verbs it trained on)")]
    if held in data and data[held].notna().any():
        panels.append((held, "heldout BLEU-4 (0–1): verbs never seen in training", "verbs it never saw"))
    xmax = min(1.02, max(FULL_CREDIT_GAUSSIAN + 0.1, float((data[gauss] + data[gauss_std].fillna(0)).max()) * 1.08))
    with _style():
        fig = Figure(figsize=(9 + 5.5 * (len(panels) - 1), 6), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (y, ylabel, what) in zip(axes, panels):
            points = data.dropna(subset=[y])
            ax.errorbar(points[gauss], points[y], xerr=points[gauss_std].fillna(0),
                        yerr=points[y.replace(" mean", " std")].fillna(0), fmt="none", ecolor="#9a9a9a",
                        elinewidth=0.8, alpha=0.7, zorder=1)
            sns.scatterplot(data=points, x=gauss, y=y, hue="KL schedule", hue_order=hue_order, style=marker,
                            style_order=sorted(set(points[marker])), palette=PALETTE, s=70, ax=ax, zorder=3,
                            edgecolor="black", linewidth=0.4, legend=ax is axes[-1])
            front = points[pareto_mask(points, x=gauss, y=y)].sort_values(gauss)
            fx, fy = front[gauss].to_list(), front[y].to_list()
            ax.plot([-0.02, *np.repeat(fx, 2)], [*np.repeat(fy, 2), -0.02], color="black", linestyle="--",
                    linewidth=1.1, zorder=2, label="Pareto front (no configuration beats these on both)")
            ax.scatter(fx, fy, s=190, facecolors="none", edgecolors="black", linewidths=1.1, zorder=4)
            ax.axhline(FULL_CREDIT_BLEU, color=CREDIT_COLOUR, linestyle=":", linewidth=1.5, zorder=1.5)
            ax.axvline(FULL_CREDIT_GAUSSIAN, color=CREDIT_COLOUR, linestyle=":", linewidth=1.5, zorder=1.5)
            if y == held and rule_heldout is not None:
                ax.axhline(rule_heldout, color="#4d4d4d", linestyle="-.", linewidth=1.3, zorder=1.5,
                           label=f"rule baseline (suffix rewrites learnt from train), {rule_heldout:.3f}")
            ax.set_xlim(-0.02, xmax)
            ax.set_ylim(-0.02, 1.04)
            ax.set_xlabel("")
            ax.set_ylabel(ylabel)
            ax.set_title(what)
        handles, labels = [], []
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        handles.append(Line2D([], [], color=CREDIT_COLOUR, linestyle=":", linewidth=1.5))
        labels.append(f"lab full-credit line (BLEU-4 {FULL_CREDIT_BLEU:.2f}, Gaussian {FULL_CREDIT_GAUSSIAN:.2f})")
        for ax in axes:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
        fig.supxlabel("Gaussian score, distinct rows (distinct training verbs formed by 100 prior draws / 100)")
        fig.suptitle(f"{SCORES_TITLE}: one point per configuration, mean ± std over seeds (same checkpoint)")
        _save(fig, path)
    return None


CURVES_TITLE = "Training curves"
CURVE_PANELS = ((names.LATENT_KL, "KL over the training words (nats)", False),
                (names.TRAIN_GRAD_NORM_MAX, "max pre-clip grad norm per epoch (L2, log)", True),
                (names.TEST_BLEU, "test BLEU-4 (0–1)", False))
"""The curves' panels: an epoch figure, its axis label, log scale (``results.CURVE_KEYS`` loads them)."""


def curves(*, curves: pd.DataFrame, roles: list[str], path: Path) -> str | None:
    """KL, max grad norm (log) and BLEU-4 per epoch, one line per seed, colour = role (`curves["role"]`)."""
    if curves.empty:
        return placeholder(path=path, title=CURVES_TITLE, note="no epoch was logged by the selected configurations")
    palette = dict(zip(roles, sns.color_palette(PALETTE, len(roles))))
    with _style():
        fig = Figure(figsize=(15, 4.6), layout="constrained")
        axes = fig.subplots(1, len(CURVE_PANELS))
        for ax, (key, label, log) in zip(axes, CURVE_PANELS):
            data = curves[np.isfinite(curves[key].astype(float))]
            if log:
                data = data[data[key] > 0]
            if data.empty:
                ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
            else:
                sns.lineplot(data=data, x="epoch", y=key, hue="role", hue_order=roles, palette=palette,
                             units="run_id", estimator=None, marker="o", markersize=4, ax=ax, legend=False)
            if log and not data.empty:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(FuncFormatter(_tick))
                ax.yaxis.set_minor_formatter(FuncFormatter(_tick) if data[key].max() < 10 * data[key].min()
                                             else NullFormatter())
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_title(label.split(" (")[0])
        plotted = set(curves["role"])
        handles = [Patch(color=palette[role], label=role if role in plotted else f"{role} (no epoch logged)")
                   for role in roles]
        fig.legend(handles=handles, loc="outside lower center", ncol=1, fontsize=9, frameon=False)
        fig.suptitle(f"{CURVES_TITLE}: one line per seed; runs that diverged stop early", fontsize=11)
        _save(fig, path)
    return None


TRACE_TITLE = "Explosion as it happens"
TRACE_PANELS = (("trace/grad_norm", "pre-clip global grad norm (L2, log)"), ("trace/loss", "batch loss (log)"),
                ("trace/logvar_absmax", "largest |log-variance| (log)"))


def explosion_trace(*, traces: pd.DataFrame, path: Path) -> str | None:
    """Per optimizer step: grad norm, loss and largest |log-variance| of a diverging run next to its clipped twin
    (`traces`: role, step and the TRACE_PANELS keys); the non-finite step is marked with an x at the top."""
    if traces.empty:
        return placeholder(path=path, title=TRACE_TITLE, note="no run diverged, or none logged its steps")
    roles = list(dict.fromkeys(traces["role"]))
    palette = dict(zip(roles, sns.color_palette(PALETTE, len(roles))))
    with _style():
        fig = Figure(figsize=(15, 4.6), layout="constrained")
        axes = fig.subplots(1, len(TRACE_PANELS))
        for ax, (key, label) in zip(axes, TRACE_PANELS):
            values = traces[key].astype(float)
            finite = traces[np.isfinite(values) & (values > 0)]
            if finite.empty:
                ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
                continue
            sns.lineplot(data=finite, x="step", y=key, hue="role", hue_order=roles, palette=palette,
                         estimator=None, ax=ax, legend=False, linewidth=1.2)
            ax.set_yscale("log")
            top = float(finite[key].max()) * 3
            for role, rows in traces.groupby("role", sort=False):
                bad = rows[~np.isfinite(rows[key].astype(float))]
                if not bad.empty:
                    ax.scatter(bad["step"], [top] * len(bad), marker="x", s=70, color=palette[role], zorder=5)
            ax.set_xlabel("optimizer step")
            ax.set_ylabel(label)
            ax.set_title(label.split(" (")[0])
        handles = [Line2D([], [], color=palette[role], label=role) for role in roles]
        handles.append(Line2D([], [], marker="x", linestyle="none", color="black", label="non-finite at this step"))
        fig.legend(handles=handles, loc="outside lower center", ncol=1, fontsize=9, frameon=False)
        fig.suptitle(f"{TRACE_TITLE}: the most explosive configuration, step by step, next to its clipped twin",
                     fontsize=11)
        _save(fig, path)
    return None


IMPORTANCE_TITLE = "Parameter importance"


def importance(*, importances: dict[str, dict[str, float]], path: Path) -> None:
    """Horizontal bars per objective: Optuna's fANOVA importance of each searched param."""
    with _style():
        n = len(importances)
        height = 1.4 + 0.38 * max(len(v) for v in importances.values())
        fig = Figure(figsize=(5.5 * n, height), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
        color = sns.color_palette(PALETTE)[0]
        for ax, (objective, values) in zip(axes, importances.items()):
            frame = pd.DataFrame({"param": list(values), "importance": list(values.values())})
            sns.barplot(data=frame.sort_values("importance", ascending=False), x="importance", y="param",
                        color=color, ax=ax)
            ax.set_xlabel("importance (share of the objective's variance, sums to 1)")
            ax.set_ylabel("setting")
            ax.set_title(objective)
            ax.set_xlim(0, 1.08)
            ax.bar_label(ax.containers[0], fmt="%.2f", padding=3, fontsize=8.5)
        fig.suptitle(f"{IMPORTANCE_TITLE}: Optuna's fANOVA of the objective over the search's trials, per block",
                     fontsize=11)
        _save(fig, path)
