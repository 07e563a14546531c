"""Search dimensions: the `search:` entries of a study spec, validated against the experiment config.

A dotted key names a config field (`optim.lr`: choices, or a numeric range typed by the field) or a section
(`kl`: choices that are "bundles", mappings of several of its keys). Every choice and range end is validated by
applying it to the base experiment; errors are one ConfigError line with the full key path in the spec.
"""

from __future__ import annotations

import copy
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cvae.config import ExperimentConfig, flatten, is_section, schema_fields
from cvae.configfile import set_dotted
from cvae.errors import ConfigError, describe_validation_error

SEED_KEY = "train.seed"
"""The config key every trial sets from `study.seeds`; always an Optuna param, never searched."""
MAX_CHOICES = 10_000
"""Most choices one search key may list (each is validated against the experiment)."""


class Space(BaseModel):
    """One search dimension: `choices`, or a numeric range `low`..`high` (with `log` or `step`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, strict=True)

    choices: list[Any] | None = None
    """Values to try; for a config section (e.g. `kl`), mappings of several of its keys ("bundles")."""
    low: float | None = None
    """Lower end of a numeric range (inclusive)."""
    high: float | None = None
    """Upper end of a numeric range (inclusive)."""
    log: bool = False
    """Sample the range on a log scale (needs low > 0; not with step)."""
    step: float | None = Field(default=None, gt=0)
    """Spacing of the range's values (integer fields: default 1); a stepped range can be a grid."""

    @model_validator(mode="after")
    def _one_kind(self) -> "Space":
        ranged = self.low is not None or self.high is not None or self.log or self.step is not None
        if self.choices is not None:
            if ranged:
                raise ValueError("give either choices or a range (low, high, log, step), not both")
            if not self.choices:
                raise ValueError("empty choices: give at least one value")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give choices: [...], or both low and high")
        for name in ("low", "high", "step"):  # .inf / .nan would reach Optuna (which draws 0.0) or int()
            if (value := getattr(self, name)) is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) must be <= high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("log needs low > 0")  # the message adds the range given
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        if self.step is not None and self.high > self.low:
            span = Decimal(str(self.high)) - Decimal(str(self.low))  # Optuna's own test, so it never warns
            if Decimal(str(self.step)) > span:
                raise ValueError(f"step ({self.step:g}) is larger than the range high - low ({float(span):g}); give a "
                                 "smaller step, or choices")
            if span % Decimal(str(self.step)) != 0:
                top = Decimal(str(self.low)) + (span // Decimal(str(self.step))) * Decimal(str(self.step))
                raise ValueError(f"high - low ({float(span):g}) is not a multiple of step ({self.step:g}); e.g. "
                                 f"high: {float(top):g}")
        return self


@dataclass(frozen=True)
class Dimension:
    """One searched key. `choices` are the Optuna values (bundles by label); `sets[i]` what choice i sets."""

    key: str
    kind: Literal["choice", "int", "float"]
    choices: tuple[Any, ...] = ()
    sets: tuple[dict[str, Any], ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    groups: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    """A blocked design's dimension: the blocks choice i belongs to (a configuration two blocks share is in both)."""

    def assignments(self, value: Any) -> dict[str, Any]:
        """Dotted config keys and values that the Optuna value ``value`` of this dimension stands for."""
        if self.kind == "choice":
            return dict(self.sets[self.choices.index(value)])
        return {self.key: int(value) if self.kind == "int" else float(value)}

    def blocks_of(self, value: Any) -> tuple[str, ...]:
        """The blocks the choice ``value`` belongs to; () for a dimension that is not a blocked design."""
        return self.groups[self.choices.index(value)] if self.groups else ()

    def targets(self) -> set[str]:
        """Every dotted config key this dimension may set."""
        return {key for sets in self.sets for key in sets} if self.kind == "choice" else {self.key}

    def clashes_with(self, key: str) -> bool:
        """Whether a value of ``key`` would clash with this dimension's: ``key`` is one of its targets, a section
        or key above one, or a key below one."""
        return any(t == key or t.startswith(key + ".") or key.startswith(t + ".") for t in self.targets())

    def count(self) -> int | None:
        """How many values ``grid_values`` has (without making them), or None for a continuous range."""
        if self.kind == "choice":
            return len(self.choices)
        if self.log or (self.kind == "float" and self.step is None):
            return None
        return math.floor((self.high - self.low) / (self.step or 1) + 1e-9) + 1

    def grid_values(self) -> tuple[Any, ...] | None:
        """The finite values of this dimension, or None for a continuous range."""
        if self.kind == "choice":
            return self.choices
        count = self.count()
        if count is None:
            return None
        step = self.step or 1
        if self.kind == "int":
            return tuple(int(self.low) + i * int(step) for i in range(count))
        return tuple(round(self.low + i * step, 12) for i in range(count))


def _schema_at(key: str) -> tuple[type[BaseModel] | None, Any]:
    """(section model, None) when ``key`` names a config section, (None, annotation) for a field; KeyError else."""
    annotation = schema_fields()[key]
    return (annotation, None) if is_section(annotation) else (None, annotation)


def _number_kind(annotation: Any) -> str | None:
    """`int` / `float` for a (possibly optional) numeric field annotation, else None."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    kinds = {arg for arg in args if arg is not type(None)}
    return {int: "int", float: "float"}.get(kinds.pop()) if len(kinds) == 1 else None


def build_dimension(*, key: str, space: Space, base_tree: dict[str, Any], source: str,
                    path: str = "search") -> Dimension:
    """Validate one `search:` entry against the base experiment's tree; ``source`` names the file, ``path`` the
    spec key holding the entry (`search`, `blocks[1].search`)."""
    where = f"{source}: key {path}.{key}"
    if key == SEED_KEY:
        raise ConfigError(f"{where}: seeds are not searched; list them in study.seeds")
    try:
        section, annotation = _schema_at(key)
    except KeyError:
        sections = [name for name, f in ExperimentConfig.model_fields.items() if isinstance(f.annotation, type)
                    and issubclass(f.annotation, BaseModel)]
        known = list(flatten(ExperimentConfig().model_dump())) + sections
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean '{path}.{close[0]}'?)" if close else ""
        raise ConfigError(f"{where}: unknown config key{hint}") from None
    if space.choices is not None:
        if len(space.choices) > MAX_CHOICES:
            raise ConfigError(f"{where}: {len(space.choices)} choices, more than the {MAX_CHOICES} a search key may "
                              "list; use a range (low, high)")
        sets = []
        for i, value in enumerate(space.choices):
            at = f"{where}.choices[{i}]"
            if section is not None:
                if not isinstance(value, dict):
                    raise ConfigError(f"{at}: {key} is a section: each choice is a mapping of its keys, "
                                      f"e.g. {{{next(iter(section.model_fields))}: ...}}; got {value!r}")
                assignments = {f"{key}.{k}": v for k, v in sorted(value.items())}  # one order: a bundle is a set
            elif isinstance(value, (dict, list)):
                raise ConfigError(f"{at}: expected a single value for {key}, got {value!r}")
            else:
                assignments = {key: value}
            sets.append(validated_assignments(assignments, base_tree=base_tree, where=at))
        labels = [_label(s, prefix=f"{key}.") if section is not None else s[key] for s in sets]
        first: dict[Any, int] = {}
        for i, label in enumerate(labels):  # one pass: a long list is checked in linear time
            if (earlier := first.setdefault(label, i)) != i:
                raise ConfigError(f"{where}.choices[{i}]: repeats choices[{earlier}] ({label!r})")
        return Dimension(key=key, kind="choice", choices=tuple(labels), sets=tuple(sets))
    if section is not None:
        raise ConfigError(f"{where}: {key} is a section: search it with choices (mappings of its keys)")
    kind = _number_kind(annotation)
    if kind is None:
        raise ConfigError(f"{where}: a range needs a numeric field; {key} is {_type_name(annotation)}, use choices")
    if kind == "int":
        for name in ("low", "high", "step"):
            value = getattr(space, name)
            if value is not None and value != int(value):
                raise ConfigError(f"{where}.{name}: {key} is an integer field, got {value:g}")
    for name in ("low", "high"):
        value = getattr(space, name)
        validated_assignments({key: int(value) if kind == "int" else value}, base_tree=base_tree,
                              where=f"{where}.{name}")
    assert space.low is not None and space.high is not None  # a range has both (Space's validator)
    return Dimension(key=key, kind="int" if kind == "int" else "float", low=space.low, high=space.high, log=space.log,
                     step=space.step)


def validated_assignments(assignments: dict[str, Any], *, base_tree: dict[str, Any], where: str) -> dict[str, Any]:
    """Apply ``assignments`` to the base and validate; the values as the config types read them."""
    tree = copy.deepcopy(base_tree)
    for key, value in assignments.items():
        set_dotted(tree, key, value)
    try:
        config = ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, schema=ExperimentConfig, source=where)) from None
    out = {}
    for key in assignments:
        node: Any = config
        for part in key.split("."):
            node = getattr(node, part)
        out[key] = node
    return out


def _label(sets: dict[str, Any], *, prefix: str) -> str:
    """A bundle's Optuna value: `schedule=constant,beta_max=0.0` (or `base` for an empty bundle)."""
    def scalar(value: Any) -> str:
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return ",".join(f"{k.removeprefix(prefix)}={scalar(v)}" for k, v in sets.items()) or "base"


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
