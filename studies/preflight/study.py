"""The checks of what a study will train, made before it starts: its data files load, every configuration fits
this machine's memory, every device it names exists."""

from __future__ import annotations

import copy
from typing import Any

from cvae.configfile import build_config, set_dotted
from cvae.errors import ConfigError
from studies.spec import SEED_KEY, Spec


def check_data(spec: Spec) -> None:
    """Load the data of the base config (and of searched data choices) once: a missing file is a ConfigError."""
    from cvae.data import (
        Data,
        DataError,  # torch-importing modules stay out of spec parsing
    )

    configs = [spec.base]
    for sets in (sets for dim in spec.space for sets in dim.sets if any(k.startswith("data.") for k in sets)):
        tree = copy.deepcopy(spec.base_tree)
        for key, value in sets.items():
            set_dotted(tree, key, value)
        configs.append(build_config(tree, source=str(spec.path)))
    for config in configs:
        for name in ("train", "test", "heldout"):
            file = config.data.resolve(name)
            if file is not None and not file.is_file():
                raise ConfigError(f"{spec.path}: key data.{name}: file not found: {file}")
        try:
            Data.load(config)
        except DataError as exc:
            raise ConfigError(f"{spec.path}: {exc}") from None


RESOURCE_CHECK_GRID = 2_000
"""Grids up to this size have every configuration's resources estimated; larger ones, each searched value's."""


def check_resources(spec: Spec, *, memory: int | None = None) -> None:
    """Every configuration the study may train fits this machine (``cvae.resources``): the base, each searched
    value on its own (a range at both ends), and every configuration of a grid of up to ``RESOURCE_CHECK_GRID``."""
    from cvae.resources import check_resources as fits

    seed = spec.settings.seeds[0]
    candidates: list[dict[str, Any]] = []
    if spec.grid_size is not None and spec.grid_size <= RESOURCE_CHECK_GRID:
        candidates = spec.grid_configs()
    else:
        base = {dim.key: (dim.choices[0] if dim.kind == "choice" else dim.low) for dim in spec.space}
        for dim in spec.space:
            values = dim.choices if dim.kind == "choice" else (dim.low, dim.high)
            candidates += [{**base, dim.key: value if dim.kind != "int" else int(value)} for value in values]
    fits(spec.base, source=str(spec.path), memory=memory)
    for params in candidates:
        fits(spec.config_for({**params, SEED_KEY: seed}), source=f"{spec.path} (searched values {params})",
             memory=memory)


def check_devices(spec: Spec) -> None:
    """Every `train.device` the study may train on (the base's, and searched ones) exists on this machine."""
    from cvae.device import resolve_device  # torch-importing modules stay out of spec parsing

    names = {spec.base.train.device}
    names.update(sets["train.device"] for dim in spec.space for sets in dim.sets if "train.device" in sets)
    for name in sorted(names):
        try:
            resolve_device(name)
        except ConfigError as exc:
            raise ConfigError(f"{spec.path}: {exc}") from None
