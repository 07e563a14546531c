"""The study spec's schema: its own keys (search, blocks, study settings) beside the experiment's, and the
validated ``Spec`` with the configurations it trains."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from cvae.config import MAX_SEED, ExperimentConfig, flatten
from cvae.configfile import build_config, set_dotted
from cvae.errors import ConfigError
from cvae.scoring import DEFAULT_OBJECTIVE, OBJECTIVES
from studies.contract import Phase
from studies.spec.space import SEED_KEY, Dimension, Space

SECTIONS = tuple(ExperimentConfig.model_fields)
"""Top-level keys of an experiment (`name`, `data`, `model`, ...), allowed at the top of a spec."""


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_NAME = 100
"""Longest study name (it names a journal file, an MLflow experiment, a report folder)."""


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

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""A seed every generator takes (``cvae.config.MAX_SEED``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False, strict=True)


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

    top: int = Field(default=3, ge=0, le=1000)
    """Configurations retrained (the top ones that qualify); 0 skips the confirmation."""
    seeds: list[Seed] = Field(default=[100, 101, 102], min_length=1, max_length=1000)
    """Seeds of the confirmation runs; distinct from `study.seeds`."""
    within: float | None = Field(default=None, ge=0.0, le=1000.0)
    """The confirmation's price: of the `top` configurations, retrain only the leader and those whose search
    objective (the seeds' summary, `study.rank_by`) is within this of the leader's; a configuration further below
    is not within noise of it, and confirming it would not change the answer. null: all `top`."""
    set: dict[str, Any] = Field(default={}, max_length=100)
    """Experiment keys set on every confirmation run, after the searched values (dotted keys, or sections as
    mappings), e.g. `{train.epochs: 30}`: the search screens at a cheaper fidelity, the winner's figures come from
    the full recipe. Neither a searched key nor `train.seed` (the confirmation's seeds are `seeds`)."""

    def assignments(self) -> dict[str, Any]:
        """`set` as flat dotted keys: `{train: {epochs: 30}}` and `{train.epochs: 30}` both give train.epochs."""
        return flatten(self.set)


class StudySettings(_Strict):
    """How the configurations are chosen, scored and run."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=MAX_NAME)
    """Study name: Optuna study, MLflow experiment and parent run. Default: the spec file's name without .yaml
    (a name set in an extended file is not inherited)."""
    objective: Literal[OBJECTIVES] = DEFAULT_OBJECTIVE  # type: ignore[valid-type]  # pydantic reads the tuple
    """Trial value from the chosen checkpoint: `bleu4`, `gaussian`, `bleu4+gaussian`, `min_of_both`, or
    `pareto` (two objectives, BLEU-4 and Gaussian score, both maximised)."""
    sampler: Literal["grid", "tpe", "random"] = "grid"
    """`grid`: every combination of the choices (stepped ranges expand), in order; `tpe` or `random`: Optuna."""
    trials: int | None = Field(default=None, ge=1, le=MAX_GRID)
    """Number of configurations, each trained once per seed. Grid: default the whole grid (fewer: a seeded
    random subset); tpe/random: required when there is a search."""
    seeds: list[Seed] = Field(default=[0], min_length=1, max_length=1000)
    """Seeds every configuration is trained with: one Optuna trial per (configuration, seed)."""
    rank_by: Literal["mean", "worst", "mean-std"] = "mean"
    """How a configuration's seeds are summed up to rank it (`cvae.scoring.RANK_BY`): the mean objective, the
    worst seed, or the mean minus the standard deviation (robustness across seeds)."""
    pruner: Literal["none", "settled", "median", "successive_halving", "hyperband"] = "none"
    """Stop unpromising trials early from their per-epoch objective (single objective only). `settled` stops a
    trial far below every finished `works` trial at the same epoch (``studies.queue.settled``); the others are
    Optuna's stock pruners, which ``benchmarks.pruners`` found to stop trials that would have worked."""
    workers: int = Field(default=1, ge=1, le=256)
    """Worker processes training trials in parallel (each with train.num_threads torch threads)."""
    sampler_seed: int = Field(default=0, ge=0, le=MAX_SEED)
    """Seed of the sampler's draws (tpe/random) and of the subset a partial grid keeps."""
    confirm: ConfirmSettings = ConfirmSettings()
    """After the search: retrain the top configurations on fresh seeds; the winner and its figures come from
    these runs."""
    heartbeat: int = Field(default=60, ge=1, le=86_400)
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
    annotation: Any = field.annotation  # a type, at runtime
    return annotation | None, Field(default=None, description=f"Experiment key `{name}`: {field.description}")


SpecFile = create_model(  # type: ignore[call-overload]  # fields built from the experiment's schema
    "SpecFile", __base__=_SpecKeys, __doc__="The YAML schema of a study spec: the experiment's keys (derived from "
    "cvae.config.ExperimentConfig) and the study's own.", **{name: _section_field(name) for name in SECTIONS})


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
    phase: Phase = Phase.SEARCH
    """`search`, or `confirm` for the retraining of the top configurations on fresh seeds."""
    overrides: tuple[tuple[str, Any], ...] = ()
    """Dotted keys set on every configuration after its searched values (a confirmation's `study.confirm.set`)."""
    _built: dict[str, ExperimentConfig] = field(default_factory=dict, compare=False, repr=False)
    """Each configuration's experiment, built once (``config_for``)."""

    @property
    def n_configs(self) -> int:
        """Configurations the study trains (each once per seed)."""
        if not self.space:
            return 1
        if self.only is not None:
            return len(self.only)
        if self.settings.sampler == "grid":
            return self.settings.trials or self.grid_size or 0
        return self.settings.trials or 0  # required by load_spec

    @property
    def grid_size(self) -> int | None:
        """Number of distinct configurations, or None when a dimension is continuous."""
        sizes = [dim.count() for dim in self.space]  # counted, not enumerated: a huge grid is refused fast
        counted = [size for size in sizes if size is not None]
        return math.prod(counted) if len(counted) == len(sizes) else None

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

    def blocks_of(self, params: dict[str, Any]) -> tuple[str, ...]:
        """The blocks a trial's configuration belongs to, from its params (() without blocks)."""
        return tuple(name for dim in self.space if dim.key in params for name in dim.blocks_of(params[dim.key]))

    def config_for(self, params: dict[str, Any], *, as_searched: bool = False) -> ExperimentConfig:
        """The experiment of one trial: base config + what each searched value sets (+ ``overrides``, unless
        ``as_searched``) + ``train.seed``. Each configuration is built (and validated) once; its seeds are copies
        that differ in ``train.seed`` alone."""
        searched = {dim.key: params[dim.key] for dim in self.space}
        overrides = () if as_searched else self.overrides
        key = json.dumps([searched, overrides], sort_keys=True, default=str)
        config = self._built.get(key)
        if config is None:
            tree = copy.deepcopy(self.base_tree)
            for dim in self.space:
                for dotted, value in dim.assignments(searched[dim.key]).items():
                    set_dotted(tree, dotted, value)
            for dotted, value in overrides:
                set_dotted(tree, dotted, value)
            config = self._built[key] = build_config(tree, source=f"{self.path} (trial params {params})")
        seed = params[SEED_KEY]
        if not isinstance(seed, int) or isinstance(seed, bool):  # Optuna hands back what was enqueued
            raise ConfigError(f"{self.path}: key train.seed: expected an integer seed, got {seed!r}")
        return config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})

    def searched_key(self, params: dict[str, Any]) -> str:
        """``config_key`` of the trial's configuration as the search trained it (without ``overrides``)."""
        return config_key(self.config_for(params, as_searched=True))

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
        if self.overrides:
            payload["overrides"] = [list(item) for item in self.overrides]
        return _digest(payload)

    def confirmation(self, configs: list[dict[str, Any]]) -> "Spec":
        """The study that retrains ``configs`` (search params) on the fresh seeds of `study.confirm`."""
        settings = self.settings.model_copy(update={"seeds": list(self.settings.confirm.seeds), "sampler": "grid",
                                                    "pruner": "none", "trials": None})
        return replace(self, name=f"{self.name}-confirm", settings=settings, only=tuple(configs), phase=Phase.CONFIRM,
                       overrides=tuple(self.settings.confirm.assignments().items()), _built={})


def config_key(config: ExperimentConfig) -> str:
    """12-hex digest of a config without its seed: the seeds of one configuration share it (`cvae.config_key`)."""
    return params_key(config.flat())


def params_key(params: Mapping[str, Any]) -> str:
    """``config_key`` of a flat config, over its values as MLflow holds them (text): the same digest for a config,
    for its MLflow params read back, and for a test's synthetic store."""
    rest = sorted((key, str(value)) for key, value in params.items() if key != SEED_KEY)
    return hashlib.sha256(repr(rest).encode()).hexdigest()[:12]


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
