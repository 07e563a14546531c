"""Blocked designs: several small grids around one base, as one choice dimension."""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from typing import Any

from cvae.config import ExperimentConfig, is_section, schema_fields
from cvae.configfile import set_dotted
from cvae.errors import ConfigError
from studies.spec.schema import BLOCKS_KEY, MAX_BLOCK_CONFIGS, SETTING_KEY, Block, config_key
from studies.spec.space import Dimension, Space, build_dimension, validated_assignments


def blocks_dimension(blocks: list[Block], *, base_tree: dict[str, Any], source: str) -> Dimension:
    """A blocked design as one choice dimension: every configuration of every block's grid, labelled by its block
    and its values; a configuration equal to one an earlier block has is left out (trained once)."""
    names = [block.name for block in blocks]
    owners: list[list[str]] = []  # the blocks each configuration belongs to
    values_text: list[str] = []
    sets: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    total = 0
    for i, block in enumerate(blocks):
        if block.name in names[:i]:
            raise ConfigError(f"{source}: key blocks[{i}].name: repeats blocks[{names.index(block.name)}] "
                              f"({block.name!r})")
        dims = [_setting_dimension(space, base_tree=base_tree, where=f"{source}: key blocks[{i}].search.setting")
                if key == SETTING_KEY else
                build_dimension(key=key, space=space, base_tree=base_tree, source=source,
                                path=f"blocks[{i}].search")
                for key, space in sorted(block.search.items())]  # one order: the keys of a grid are a set
        for dim in dims:
            if dim.count() is None:
                raise ConfigError(f"{source}: key blocks[{i}].search.{dim.key}: a block is a grid: give choices "
                                  "or a stepped linear range")
        total += math.prod(dim.count() or 0 for dim in dims)
        if total > MAX_BLOCK_CONFIGS:
            raise ConfigError(f"{source}: key blocks[{i}]: the blocks have {total} configurations or more, more "
                              f"than the {MAX_BLOCK_CONFIGS} a blocked design may have; blocks are small grids")
        for values in itertools.product(*(dim.grid_values() or () for dim in dims)):
            assignments: dict[str, Any] = {}
            for dim, value in zip(dims, values):
                assignments.update(dim.assignments(value))
            tree = copy.deepcopy(base_tree)
            for key, value in assignments.items():
                set_dotted(tree, key, value)
            key = config_key(ExperimentConfig.model_validate(tree))
            if key in seen:  # shared with an earlier block (the base, typically): trained once, shown in both
                owners[seen[key]].append(block.name)
                continue
            seen[key] = len(sets)
            owners.append([block.name])
            values_text.append(", ".join(f"{k}={_scalar(v)}" for k, v in sorted(assignments.items())))
            sets.append(assignments)
    labels = tuple(f"{'+'.join(names)}: {text}" for names, text in zip(owners, values_text))
    return Dimension(key=BLOCKS_KEY, kind="choice", choices=labels, sets=tuple(sets),
                     groups=tuple(tuple(names) for names in owners))


def _setting_dimension(space: Space, *, base_tree: dict[str, Any], where: str) -> Dimension:
    """A block's `setting`: choices that are mappings of dotted keys from any sections, e.g.
    `{kl.schedule: constant, kl.beta_max: 1.0, model.mu_bn: null}`."""
    if space.choices is None:
        raise ConfigError(f"{where}: give choices, each a mapping of dotted config keys")
    sets = []
    for i, value in enumerate(space.choices):
        if not isinstance(value, dict) or not value:
            raise ConfigError(f"{where}.choices[{i}]: expected a mapping of dotted config keys, e.g. "
                              f"{{kl.beta_max: 1.0, model.mu_bn: null}}; got {value!r}")
        for key in value:
            known = [name for name, annotation in schema_fields().items() if not is_section(annotation)]
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{where}.choices[{i}]: unknown config key {key!r}{hint}")
        sets.append(validated_assignments(dict(sorted(value.items())), base_tree=base_tree,  # a bundle is a set
                                          where=f"{where}.choices[{i}]"))
    labels = [",".join(f"{k}={_scalar(v)}" for k, v in one.items()) for one in sets]
    return Dimension(key=SETTING_KEY, kind="choice", choices=tuple(labels), sets=tuple(sets))


def _scalar(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else f"{value:g}" \
        if isinstance(value, float) else str(value)
