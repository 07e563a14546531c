"""Study spec: a base experiment, a search space over its dotted keys, and study settings.

    extends: baseline.yaml          # relative to this file's folder, then experiments/
    model: {hidden_size: 32}        # experiment sections, deep-merged over the extended file
    search:                         # dotted config key -> space
      optim.lr: {low: 1.0e-3, high: 1.0, log: true}
      optim.clip_norm: {choices: [null, 1.0]}
      kl:                           # a section takes bundles: each choice sets several of its keys
        choices: [{schedule: constant, beta_max: 0.0}, {schedule: cyclical, free_bits: 0.1}]
    study: {name: demo, objective: bleu4+gaussian, sampler: random, trials: 20, seeds: [0, 1]}

A spec may extend an experiment file or another spec; ``--set key=value`` overrides any key of the merged
spec (experiment sections, ``study.*``, ``search.*``). Every error is one ConfigError line naming the file that
sets the key and the full key path. Nothing here knows Optuna or MLflow.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from cvae.config import (ConfigError, ExperimentConfig, build_config, describe_validation_error, find_spec_file,
                         flatten, load_yaml, parse_override, set_dotted)
from cvae.scoring import DEFAULT_OBJECTIVE, OBJECTIVES
from studies.space import SEED_KEY, Dimension, Space, build_dimension, validated_assignments

__all__ = ["SEED_KEY", "Dimension", "Space", "Spec", "SpecFile", "StudySettings", "check_data", "config_key",
           "load_spec"]

SECTIONS = tuple(ExperimentConfig.model_fields)
"""Top-level keys of an experiment (`name`, `data`, `model`, ...), allowed at the top of a spec."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_GRID = 1_000_000
"""Largest grid the grid sampler enumerates."""
MAX_BLOCK_CONFIGS = 10_000
"""Most configurations the blocks of a blocked design may have together (each one is validated when loading)."""
STUDY_COLLAPSE_PATIENCE = 3
"""`train.collapse_patience` of a study's trials unless its spec sets it (null turns the detector off)."""
SETTING_KEY = "setting"
"""In a block's search: a bundle of dotted keys from any sections (e.g. a KL remedy that is a model option)."""
BLOCKS_KEY = "blocks"
"""The Optuna param of a blocked design: one choice per configuration, labelled `block: key=value, ...`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


class Block(_Strict):
    """One block of a blocked design: a name and a grid over some keys."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_ -]*$", max_length=60)
    """Shown in run names and the report, e.g. `explosion`."""
    search: dict[str, Space] = Field(min_length=1)
    """Dotted config key -> choices (or a stepped range), as in `search`; the key `setting` takes mappings of
    dotted keys from any sections (`{kl.beta_max: 1.0, model.mu_bn: null}`)."""


class ConfirmSettings(_Strict):
    """Confirmation on fresh seeds: the winner's curse (a search's best seeds flatter it) is undone by retraining
    the top configurations on seeds the search never used, once the search is done."""

    top: int = Field(default=3, ge=0)
    """Configurations retrained (the top ones that qualify); 0 skips the confirmation."""
    seeds: list[int] = Field(default=[100, 101, 102], min_length=1)
    """Seeds of the confirmation runs; distinct from `study.seeds`."""


class StudySettings(_Strict):
    """How the configurations are chosen, scored and run."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=100)
    """Study name: Optuna study, MLflow experiment and parent run. Default: the spec file's name without .yaml
    (a name set in an extended file is not inherited)."""
    objective: Literal[OBJECTIVES] = DEFAULT_OBJECTIVE
    """Trial value from the chosen checkpoint: `bleu4`, `gaussian`, `bleu4+gaussian`, `min_of_both`, or
    `pareto` (two objectives, BLEU-4 and Gaussian score, both maximised)."""
    sampler: Literal["grid", "tpe", "random"] = "grid"
    """`grid`: every combination of the choices (stepped ranges expand), in order; `tpe` or `random`: Optuna."""
    trials: int | None = Field(default=None, ge=1)
    """Number of configurations, each trained once per seed. Grid: default the whole grid (fewer: a seeded
    random subset); tpe/random: required when there is a search."""
    seeds: list[int] = Field(default=[0], min_length=1)
    """Seeds every configuration is trained with: one Optuna trial per (configuration, seed)."""
    rank_by: Literal["mean", "worst", "mean-std"] = "mean"
    """How a configuration's seeds are summed up to rank it (`cvae.scoring.RANK_BY`): the mean objective, the
    worst seed, or the mean minus the standard deviation (robustness across seeds)."""
    pruner: Literal["none", "median", "successive_halving", "hyperband"] = "none"
    """Stop unpromising trials early from their per-epoch objective (single objective only)."""
    workers: int = Field(default=1, ge=1)
    """Worker processes training trials in parallel (each with train.num_threads torch threads)."""
    sampler_seed: int = 0
    """Seed of the sampler's draws (tpe/random) and of the subset a partial grid keeps."""
    confirm: ConfirmSettings = ConfirmSettings()
    """After the search: retrain the top configurations on fresh seeds; the winner and its figures come from
    these runs."""
    heartbeat: int = Field(default=60, ge=1)
    """RDB storages (PostgreSQL...): seconds between the heartbeats of a running trial. A trial that misses 3 is
    failed by any other worker of the study, on any machine, and its (configuration, seed) run again. Set when
    the study is created; every machine must then use the same value."""

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")  # the message adds the list given
        return seeds

    @model_validator(mode="after")
    def _fresh_confirmation_seeds(self) -> "StudySettings":
        if len(set(self.confirm.seeds)) != len(self.confirm.seeds):
            raise ValueError(f"confirm.seeds must be distinct, got {self.confirm.seeds}")
        if self.confirm.top and set(self.confirm.seeds) & set(self.seeds):
            raise ValueError(f"confirm.seeds {self.confirm.seeds} must be seeds the search never used "
                             f"(study.seeds is {self.seeds})")
        return self

    @model_validator(mode="after")
    def _pruning_needs_one_value(self) -> "StudySettings":
        if self.objective == "pareto" and self.pruner != "none":
            raise ValueError("pruning needs a single objective; use pruner: none with objective: pareto")
        return self


class _SpecKeys(_Strict):
    """The keys of a study spec that are not experiment sections."""

    extends: str | None = None
    """Experiment or spec file this one builds on: relative to this file's folder, then experiments/."""
    search: dict[str, Space] | None = {}
    """Dotted config key -> space. No search (or `null`, which drops an extended file's): one configuration."""
    blocks: list[Block] | None = None
    """Instead of `search`: several small grids around the same base, trained as one study (grid sampler). Each
    block varies its own keys and keeps the base's values for the rest; a configuration two blocks share is
    trained once."""
    study: StudySettings = StudySettings()
    """Study settings."""


def _section_field(name: str) -> tuple[Any, Any]:
    """A spec's copy of the experiment's field ``name``: the same type for a scalar (`name`), a raw mapping for a
    section (validated by cvae.config after the layers are merged), documented by the experiment's own docstring."""
    field = ExperimentConfig.model_fields[name]
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
        doc = (f"Experiment section `{name}` (cvae.config.{field.annotation.__name__}): {field.description} "
               "Deep-merged over the extended file.")
        return dict[str, Any] | None, Field(default=None, description=doc)
    return field.annotation | None, Field(default=None, description=f"Experiment key `{name}`: {field.description}")


SpecFile = create_model("SpecFile", __base__=_SpecKeys, __doc__="The YAML schema of a study spec: the experiment's "
                        "keys (derived from cvae.config.ExperimentConfig) and the study's own.",
                        **{name: _section_field(name) for name in SECTIONS})


@dataclass(frozen=True)
class Spec:
    """A validated study spec: base experiment, search dimensions and settings."""

    path: Path
    name: str
    base_tree: dict[str, Any]
    base: ExperimentConfig
    space: tuple[Dimension, ...]
    settings: StudySettings
    only: tuple[dict[str, Any], ...] | None = None
    """The configurations to train, when not the whole grid (a confirmation: the search's top ones)."""
    phase: str = "search"
    """`search`, or `confirm` for the retraining of the top configurations on fresh seeds."""

    @property
    def n_configs(self) -> int:
        """Configurations the study trains (each once per seed)."""
        if not self.space:
            return 1
        if self.only is not None:
            return len(self.only)
        if self.settings.sampler == "grid":
            return self.settings.trials or self.grid_size
        return self.settings.trials  # required by load_spec

    @property
    def grid_size(self) -> int | None:
        """Number of distinct configurations, or None when a dimension is continuous."""
        sizes = [dim.count() for dim in self.space]  # counted, not enumerated: a huge grid is refused fast
        return None if any(size is None for size in sizes) else math.prod(sizes)

    def grid_configs(self) -> list[dict[str, Any]]:
        """Grid sampler: the search params of every configuration to train, in grid order (seed excluded)."""
        if self.only is not None:
            return [dict(config) for config in self.only]
        values = [dim.grid_values() for dim in self.space]
        size = self.grid_size or 0
        order = list(range(size))
        random.Random(self.settings.sampler_seed).shuffle(order)  # a longer prefix keeps a shorter one's picks
        picked = sorted(order[: self.n_configs])
        configs = []
        for index in picked:
            params = {}
            for dim, options in zip(reversed(self.space), reversed(values)):  # last key varies fastest
                index, pos = divmod(index, len(options))
                params[dim.key] = options[pos]
            configs.append({dim.key: params[dim.key] for dim in self.space})
        return configs

    def config_for(self, params: dict[str, Any]) -> ExperimentConfig:
        """The experiment of one trial: base config + what each searched value sets + ``train.seed``."""
        tree = copy.deepcopy(self.base_tree)
        for dim in self.space:
            for key, value in dim.assignments(params[dim.key]).items():
                set_dotted(tree, key, value)
        set_dotted(tree, SEED_KEY, params[SEED_KEY])
        return build_config(tree, source=f"{self.path} (trial params {params})")

    @property
    def digest(self) -> str:
        """Identity of what the study trains: base, space, seeds, objective, sampler (not trials/workers)."""
        s = self.settings
        payload = {"base": self.base.model_dump(), "space": [repr(dim) for dim in self.space], "seeds": s.seeds,
                   "objective": s.objective, "sampler": s.sampler, "sampler_seed": s.sampler_seed}
        if s.rank_by != "mean":
            payload["rank_by"] = s.rank_by
        if self.only is not None:
            payload["only"] = [sorted(config.items()) for config in self.only]
        return _digest(payload)

    def confirmation(self, configs: list[dict[str, Any]]) -> "Spec":
        """The study that retrains ``configs`` (search params) on the fresh seeds of `study.confirm`."""
        settings = self.settings.model_copy(update={"seeds": list(self.settings.confirm.seeds), "sampler": "grid",
                                                    "pruner": "none", "trials": None})
        return replace(self, name=f"{self.name}-confirm", settings=settings, only=tuple(configs), phase="confirm")


def config_key(config: ExperimentConfig) -> str:
    """12-hex digest of a config without its seed: the seeds of one configuration share it (`cvae.config_key`)."""
    return params_key(config.flat())


def params_key(params: Mapping[str, Any]) -> str:
    """``config_key`` of a flat config, over its values as MLflow holds them (text): the same digest for a config,
    for its MLflow params read back, and for a test's synthetic store."""
    rest = sorted((key, str(value)) for key, value in params.items() if key != SEED_KEY)
    return hashlib.sha256(repr(rest).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_spec(path: str | Path, *, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """Read, merge (`extends`), override (``--set``) and validate a study spec; one-line ConfigError on error."""
    file = find_spec_file(path)
    layers = _read_chain(file, seen=())
    for i, (source, tree) in enumerate(layers[:-1]):  # a study's name is not inherited through `extends`
        if isinstance(tree.get("study"), dict) and "name" in tree["study"]:
            layers[i] = (source, {**tree, "study": {k: v for k, v in tree["study"].items() if k != "name"}})
    if overrides:
        try:
            layers.append((f"{file} (--set)", _override_tree(overrides)))
        except ConfigError as exc:  # `--set KEY` without a value: name the spec it was meant for
            raise ConfigError(f"{file} (--set): {exc}") from None
    merged: dict[str, Any] = {}
    for _, layer in layers:
        for own, other in (("blocks", "search"), ("search", "blocks")):  # a layer's design replaces the other kind
            if isinstance(layer, dict) and layer.get(own) and other not in layer:
                merged.pop(other, None)
        merged = _merge(merged, layer)
    merged.pop("extends", None)
    try:
        spec_file = SpecFile.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_describe(err, SpecFile, layers, merged)) from None
    base_tree = {key: merged[key] for key in SECTIONS if key in merged}
    try:
        base = ExperimentConfig.model_validate(base_tree)
    except ValidationError as err:
        raise ConfigError(_describe(err, ExperimentConfig, layers)) from None
    settings = spec_file.study
    name = settings.name or file.stem
    if settings.name is None and not re.match(NAME_PATTERN, name):
        raise ConfigError(f"{file}: key study.name: the file name {name!r} is not a valid study name; set study.name")
    base_tree.setdefault("train", {}).setdefault("collapse_patience", STUDY_COLLAPSE_PATIENCE)
    base = ExperimentConfig.model_validate(base_tree)
    if spec_file.blocks is not None:
        if spec_file.search:
            raise ConfigError(f"{_source_of(layers, ('blocks',))}: key blocks: give either search or blocks, "
                              "not both")
        space = (blocks_dimension(spec_file.blocks, base_tree=base_tree, source=_source_of(layers, ("blocks",))),)
        if settings.sampler != "grid":
            raise ConfigError(f"{_source_of(layers, ('study', 'sampler'))}: key study.sampler: blocks are grids; "
                              "use sampler: grid")
    else:
        space = tuple(build_dimension(key=key, space=space, base_tree=base_tree,
                                      source=_source_of(layers, ("search", key)))
                      for key, space in (spec_file.search or {}).items())
    spec = Spec(path=file, name=name, base_tree=base_tree, base=base, space=space, settings=settings)
    _check_study(spec, layers=layers, set_keys=[parse_override(text)[0] for text in overrides])
    return spec


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
                for key, space in block.search.items()]
        for dim in dims:
            if dim.count() is None:
                raise ConfigError(f"{source}: key blocks[{i}].search.{dim.key}: a block is a grid: give choices "
                                  "or a stepped linear range")
        total += math.prod(dim.count() for dim in dims)
        if total > MAX_BLOCK_CONFIGS:
            raise ConfigError(f"{source}: key blocks[{i}]: the blocks have {total} configurations or more, more "
                              f"than the {MAX_BLOCK_CONFIGS} a blocked design may have; blocks are small grids")
        for values in itertools.product(*(dim.grid_values() for dim in dims)):
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
            values_text.append(", ".join(f"{k}={_scalar(v)}" for k, v in assignments.items()))
            sets.append(assignments)
    labels = tuple(f"{'+'.join(names)}: {text}" for names, text in zip(owners, values_text))
    return Dimension(key=BLOCKS_KEY, kind="choice", choices=labels, sets=tuple(sets))


def block_names(params: dict[str, Any]) -> list[str]:
    """The blocks a trial's configuration belongs to (from its `blocks` param); [] without blocks."""
    label = params.get(BLOCKS_KEY)
    return label.split(":", 1)[0].split("+") if isinstance(label, str) else []


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
            known = flatten(ExperimentConfig().model_dump())
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{where}.choices[{i}]: unknown config key {key!r}{hint}")
        sets.append(validated_assignments(dict(value), base_tree=base_tree, where=f"{where}.choices[{i}]"))
    labels = [",".join(f"{k}={_scalar(v)}" for k, v in one.items()) for one in sets]
    return Dimension(key=SETTING_KEY, kind="choice", choices=tuple(labels), sets=tuple(sets))


def _scalar(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else f"{value:g}" \
        if isinstance(value, float) else str(value)


def check_data(spec: Spec) -> None:
    """Load the data of the base config (and of searched data choices) once: a missing file is a ConfigError."""
    from cvae.data import DataError  # torch-importing modules stay out of spec parsing
    from cvae.data import Data

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
            raise ConfigError(f"{spec.path}: key data: {exc}") from None


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


def _read_chain(path: Path, *, seen: tuple[Path, ...]) -> list[tuple[str, dict[str, Any]]]:
    """[(file, tree)] from the most basic extended file to ``path``."""
    chain = (*seen, path)
    if path.resolve() in {p.resolve() for p in seen}:
        raise ConfigError(f"{seen[0]}: key extends: cycle {' -> '.join(p.name for p in chain)}")
    raw = load_yaml(path)
    parent = raw.get("extends")
    if parent is None:
        return [(str(path), raw)]
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{path}: key extends: expected a file name, got {parent!r}")
    local = path.parent / parent
    if local.is_file():
        parent_path = local
    else:
        try:
            parent_path = find_spec_file(parent)
        except ConfigError:
            raise ConfigError(f"{path}: key extends: {parent}: file not found "
                              f"(looked in {path.parent}/ and experiments/)") from None
    try:
        return _read_chain(parent_path, seen=chain) + [(str(path), raw)]
    except ConfigError as exc:  # what is wrong in an extended file, reached from this one
        if str(exc).startswith(f"{seen[0] if seen else path}: key extends: cycle"):
            raise
        raise ConfigError(f"{path}: key extends: {exc}") from None


def _override_tree(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set`` texts as a spec tree; `search.optim.lr.high=1` sets field `high` of search key `optim.lr`."""
    tree: dict[str, Any] = {}
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("search."):
            head, _, field = key.removeprefix("search.").rpartition(".")
            search = tree.setdefault("search", {})
            if field in Space.model_fields and head:
                search.setdefault(head, {})[field] = value
            else:
                search[key.removeprefix("search.")] = value
        else:
            set_dotted(tree, key, value)
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else (
            copy.deepcopy(value))
    return out


def _source_of(layers: list[tuple[str, dict[str, Any]]], loc: tuple[Any, ...]) -> str:
    """The top-most layer that sets the longest prefix of key path ``loc``: where an error should point."""
    best, depth = layers[-1][0], -1
    for source, tree in reversed(layers):
        node, found = tree, 0
        for part in loc:
            if not isinstance(node, dict) or part not in node:
                break
            node, found = node[part], found + 1
        if found > depth:
            best, depth = source, found
    return best


def _describe(err: ValidationError, schema: type[BaseModel], layers: list[tuple[str, dict[str, Any]]],
              merged: dict[str, Any] | None = None) -> str:
    loc = tuple(err.errors()[0]["loc"])
    source = _source_of(layers, loc)
    if merged is not None and len(loc) >= 3 and loc[0] == "search":  # inside one Space: its fields for the hint
        try:
            Space.model_validate(merged["search"][loc[1]])
        except ValidationError as inner:
            return describe_validation_error(inner, schema=Space, source=source, prefix=f"search.{loc[1]}.")
    return describe_validation_error(err, schema=schema, source=source)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _check_study(spec: Spec, *, layers: list[tuple[str, dict[str, Any]]], set_keys: list[str]) -> None:
    """Cross-key checks: overlapping search keys, --set on searched keys, trials vs sampler and grid size."""
    s = spec.settings
    for i, dim in enumerate(spec.space):
        for other in spec.space[:i]:
            if common := sorted(dim.targets() & other.targets()):
                raise ConfigError(f"{_source_of(layers, ('search', dim.key))}: key search.{dim.key}: sets "
                                  f"{common[0]}, as search.{other.key} does")
        for set_key in set_keys:
            if any(t == set_key or t.startswith(set_key + ".") for t in dim.targets()):
                raise ConfigError(f"{spec.path} (--set): key {set_key}: is searched (search.{dim.key}); "
                                  f"drop the --set or override search.{dim.key}")
    study_source = _source_of(layers, ("study", "trials"))
    if not spec.space:
        return
    if s.sampler == "grid":
        for dim in spec.space:
            if dim.count() is None:
                raise ConfigError(f"{_source_of(layers, ('search', dim.key))}: key search.{dim.key}: the grid "
                                  "sampler needs choices or a stepped linear range")
        if (spec.grid_size or 0) > MAX_GRID:
            raise ConfigError(f"{_source_of(layers, ('study', 'sampler'))}: key study.sampler: the grid has "
                              f"{spec.grid_size} configurations (more than {MAX_GRID}); use random or tpe")
        if s.trials is not None and s.trials > (spec.grid_size or 0):
            raise ConfigError(f"{study_source}: key study.trials: {s.trials} exceeds the grid's "
                              f"{spec.grid_size} configurations")
        return
    if s.trials is None:
        raise ConfigError(f"{study_source}: key study.trials: required with sampler {s.sampler} "
                          "(number of configurations to sample)")
    if spec.grid_size is not None and s.trials > spec.grid_size:
        raise ConfigError(f"{study_source}: key study.trials: {s.trials} exceeds the {spec.grid_size} distinct "
                          "configurations of the search space; use sampler: grid")
