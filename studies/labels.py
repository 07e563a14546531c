"""How things are shown, defined once: a configuration's name (the board, the run names in MLflow, the report's
findings and leaderboard, `studies.best`), values, KL bundles, map levels, mean ± std."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

MAX_LEVELS = 8
"""A map axis (or colour) shows each value of a param when it has at most this many, else this many groups."""


KL_ORDER = {"constant": 0, "monotonic": 1, "cyclical": 2}


def kl_label(*, schedule: str, beta_max: float, free_bits: float, coarse: bool = False) -> str:
    """Readable KL bundle: `constant β=0`, `monotonic`, `cyclical`, `cyclical + free bits 0.1` (β shown if ≠ 1).

    ``coarse`` drops the numbers (except β=0 of a constant schedule): `cyclical + free bits`.
    """
    label = str(schedule)
    if schedule == "constant" and beta_max == 0:
        label += " β=0"
    elif not coarse and (schedule == "constant" or (beta_max is not None and not math.isnan(beta_max)
                                                      and beta_max != 1.0)):
        label += f" β={beta_max:.2g}"
    if free_bits and not math.isnan(free_bits) and free_bits > 0:
        label += " + free bits" if coarse else f" + free bits {free_bits:.2g}"
    return label


def kl_labels(frame: pd.DataFrame, *, coarse: bool = False) -> pd.Categorical:
    """Per-row KL bundle labels, ordered constant < monotonic < cyclical, then by free bits and β."""
    triples = list(zip(frame["kl.schedule"], frame["kl.beta_max"], frame["kl.free_bits"]))
    labels = {t: kl_label(schedule=t[0], beta_max=t[1], free_bits=t[2], coarse=coarse) for t in set(triples)}
    order = sorted(labels, key=lambda t: (KL_ORDER.get(t[0], 9), str(t[0]), t[2], t[1]))
    categories = list(dict.fromkeys(labels[t] for t in order))
    return pd.Categorical([labels[t] for t in triples], categories=categories, ordered=True)


DECODER_KEYS = ("model.decoder", "model.source_dropout", "model.source_z", "model.sampling")
"""The settings a decoder label says."""


def decoder_label(flat: Mapping[str, Any]) -> str:
    """Readable decoder: `lab`, or `copy z-only 0.5` (an attending decoder and the share of words it decodes from z
    alone), with `prior z` when the words that read their source get a prior draw for z (``model.source_z``) and
    `via lemma` when noise is decoded through its simple present (``model.sampling``)."""
    decoder = flat.get("model.decoder")
    if _missing(decoder):
        return ""
    if decoder == "lab":
        return "lab"
    label = f"{decoder} z-only {fmt_value(flat.get('model.source_dropout'))}"
    label += " prior z" if flat.get("model.source_z") == "prior" else ""
    return label + (" via lemma" if flat.get("model.sampling") == "lemma" else "")


def decoder_labels(frame: pd.DataFrame) -> pd.Categorical:
    """Per-row decoder labels, ordered as the decoders grow stronger: lab, attention, copy; then by z-only share."""
    order = {"lab": 0, "attention": 1, "copy": 2}
    keys = [tuple(row) for row in frame.reindex(columns=list(DECODER_KEYS)).astype(object).itertuples(index=False)]
    labels = {key: decoder_label(dict(zip(DECODER_KEYS, key))) for key in set(keys)}
    ranked = sorted(labels, key=lambda key: (order.get(str(key[0]), 9), -float(key[1]) if not _missing(key[1])
                                             else 0.0, str(key[2]), key[3] == "lemma"))
    return pd.Categorical([labels[key] for key in keys], categories=list(dict.fromkeys(labels[k] for k in ranked)),
                          ordered=True)


def fmt_value(value: Any) -> str:
    """A param value for labels: numbers with %g, None/NaN as `none`."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "none"
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def pow10(value: float) -> str:
    """1234 -> `1e3`, 0.05 -> `5e-2`; non-finite (and MLflow's stored inf) -> `inf`, NaN -> empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not math.isfinite(value) or value >= 1e300:
        return "inf"
    if value <= 0:
        return "0"
    exponent = math.floor(math.log10(value))
    mantissa = round(value / 10 ** exponent)
    if mantissa == 10:
        mantissa, exponent = 1, exponent + 1
    return f"{mantissa}e{exponent}"


RUN_NAME_KEYS = {"model.latent_size": "z", "model.hidden_size": "h", "model.rnn": "", "train.batch_size": "b",
                 "train.epochs": "ep", "model.mu_bn": "bn",
                 "model.word_dropout": "wd", "teacher_forcing.start": "tf", "train.prior_fill": "fill"}


def run_name(flat: dict[str, Any], *, varied: list[str]) -> str:
    """A child run's name in `mlflow ui`, from its decoder, varied settings and seed:
    `lab · sgd lr3 clip- · cyclical · z32 · s1` (the decoder; optimizer, learning rate and clip norm; the KL bundle;
    other keys by short name; the seed)."""
    return f"{config_name(flat, varied=varied)} · s{flat['train.seed']}"


def config_name(config: Mapping[str, Any], *, varied: list[str]) -> str:
    """A configuration's one name, from its decoder and varied settings: `lab · sgd lr3 clip- · cyclical · z32`
    (`base` for runs logged without a decoder key, when nothing is varied). ``config``: a flat config (dotted
    keys), or a report row holding those keys (NaN = none)."""
    flat: dict[str, Any] = {key: None if _missing(value) else value for key, value in config.items()}
    parts = [label] if (label := decoder_label(flat)) else []  # every name says its decoder
    if any(key.startswith("optim.") for key in varied):
        clip = flat.get("optim.clip_norm")
        clip_text = "-" if clip is None else fmt_value(clip)
        parts.append(f"{flat['optim.name']} lr{fmt_value(flat['optim.lr'])} clip{clip_text}")
    if any(key.startswith("kl.") for key in varied):
        parts.append(kl_label(schedule=flat["kl.schedule"], beta_max=flat["kl.beta_max"],
                              free_bits=flat["kl.free_bits"]))
    for key in varied:
        if key.startswith(("optim.", "kl.")) or key in ("train.seed", *DECODER_KEYS):
            continue
        short = RUN_NAME_KEYS.get(key, key.rsplit(".", 1)[-1] + " ")
        parts.append(f"{short}{'-' if flat[key] is None else fmt_value(flat[key])}")
    return " · ".join(parts) or "base"  # a name without a decoder key: runs logged before it existed


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))


def objective_label(objective: str) -> str:
    return "BLEU-4 + Gaussian (Pareto study)" if objective == "pareto" else objective


def _edge(value: float) -> str:
    return f"{value:.2g}" if value < 100 else f"{value:.0f}"


def levels(values: pd.Series, *, log: bool = True) -> pd.Categorical:
    """Ordered labels of a numeric param for a map axis: each value (`0.003`), or, for a continuous search
    with more than MAX_LEVELS values, the bin holding it (`0.001–0.0032`, log-spaced bins); NaN is `none`, last."""
    numbers = values.astype(float)
    missing = numbers.isna().to_numpy()
    distinct = np.sort(numbers.dropna().unique())
    if len(distinct) <= MAX_LEVELS:
        labels = [fmt_value(v) for v in numbers]
        categories = list(dict.fromkeys(fmt_value(v) for v in distinct))
    else:
        low, high = distinct[0], distinct[-1]
        edges = (np.geomspace(low, high, MAX_LEVELS + 1) if log and low > 0
                 else np.linspace(low, high, MAX_LEVELS + 1))
        if pd.api.types.is_integer_dtype(values):  # whole numbers: bins of whole numbers
            bounds = [math.ceil(e) for e in edges[:-1]] + [int(high) + 1]
            names = [f"{bounds[i]}–{bounds[i + 1] - 1}" if bounds[i + 1] - 1 > bounds[i] else str(bounds[i])
                     for i in range(MAX_LEVELS)]
        else:
            names = [f"{_edge(edges[i])}–{_edge(edges[i + 1])}" for i in range(MAX_LEVELS)]
        index = np.clip(np.searchsorted(edges, numbers.fillna(low), side="right") - 1, 0, MAX_LEVELS - 1)
        labels = [names[i] for i in index]
        categories = [names[i] for i in sorted(set(index[~missing]))]
    labels = ["none" if gone else label for label, gone in zip(labels, missing)]
    return pd.Categorical(labels, categories=categories + (["none"] if missing.any() else []), ordered=True)


def mean_std(mean: float, std: float, *, digits: int = 3) -> str:
    """`0.712 ± 0.010`; the std is left out when it is undefined (one seed); `–` when there is no mean."""
    if mean is None or pd.isna(mean):
        return "–"
    if std is None or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mean_std_text(values: list[float], *, digits: int = 3) -> str:
    """``mean_std`` of a list of values (`–` when empty; no std for one value)."""
    if not values:
        return "–"
    series = pd.Series(values, dtype=float)
    return mean_std(series.mean(), series.std() if len(values) > 1 else math.nan, digits=digits)


def rate(count: float, total: float) -> str:
    """`1/2 (50%)`; `–` without a denominator."""
    if not total or pd.isna(total):
        return "–"
    return f"{int(count)}/{int(total)} ({100 * count / total:.0f}%)"
