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
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cvae.config import ExperimentConfig
from cvae.configfile import find_spec_file, parse_override, set_dotted
from cvae.errors import ConfigError, describe_validation_error
from cvae.paths import user_path
from cvae.yamlfile import load_yaml
from studies.spec.blocks import blocks_dimension
from studies.spec.schema import MAX_GRID, MAX_NAME, NAME_PATTERN, SECTIONS, STUDY_COLLAPSE_PATIENCE, Spec, SpecFile
from studies.spec.space import SEED_KEY, Dimension, Space, build_dimension


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
    if settings.name is None and (not re.fullmatch(NAME_PATTERN, name) or len(name) > MAX_NAME):
        why = (f"is longer than the {MAX_NAME} characters a study name may have" if len(name) > MAX_NAME else
               "is not a valid study name (letters, digits, '_', '.', '-')")
        raise ConfigError(f"{file}: key study.name: the file name {name!r} {why}; set study.name")
    base_tree.setdefault("train", {}).setdefault("collapse_patience", STUDY_COLLAPSE_PATIENCE)
    base = ExperimentConfig.model_validate(base_tree)
    if spec_file.blocks is not None:
        if spec_file.search:
            raise ConfigError(f"{_source_of(layers, ('blocks',))}: key blocks: give either search or blocks, "
                              "not both")
        source = _source_of(layers, ("blocks",))
        space: tuple[Dimension, ...] = (blocks_dimension(spec_file.blocks, base_tree=base_tree, source=source),)
        if settings.sampler != "grid":
            raise ConfigError(f"{_source_of(layers, ('study', 'sampler'))}: key study.sampler: blocks are grids; "
                              "use sampler: grid")
    else:
        space = tuple(build_dimension(key=key, space=space, base_tree=base_tree,
                                      source=_source_of(layers, ("search", key)))
                      for key, space in sorted((spec_file.search or {}).items()))  # the keys are a set
    spec = Spec(path=file, name=name, base_tree=base_tree, base=base, space=space, settings=settings)
    parsed = [parse_override(text) for text in overrides]
    if any(key == SEED_KEY or (key == "train" and isinstance(value, dict) and "seed" in value)
           for key, value in parsed):
        raise ConfigError(f"{spec.path} (--set): key {SEED_KEY}: a study trains every configuration once per seed "
                          f"of study.seeds, whatever train.seed says; pass --set study.seeds=[...] instead")
    _check_study(spec, layers=layers, set_keys=[key for key, _ in parsed])
    return spec


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
    user_path(parent, where=f"{path}: key extends:")
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
    except ConfigError as exc:  # what is wrong in an extended file: that file named first, then who extends it
        if str(exc).startswith(f"{seen[0] if seen else path}: key extends: cycle") or "(extended by " in str(exc):
            raise
        raise ConfigError(f"{exc} (extended by {path})") from None


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


def _check_confirm_set(spec: Spec, *, layers: list[tuple[str, dict[str, Any]]]) -> None:
    """`study.confirm.set`: experiment keys the search holds fixed, whose values the base takes."""
    source = _source_of(layers, ("study", "confirm", "set"))
    tree = copy.deepcopy(spec.base_tree)
    for key, value in spec.settings.confirm.assignments().items():
        where = f"{source}: key study.confirm.set.{key}:"
        if key.split(".")[0] not in SECTIONS or "." not in key:
            raise ConfigError(f"{where} expected a dotted experiment key (a section of {', '.join(SECTIONS)}, "
                              "then its key), e.g. train.epochs")
        if key == SEED_KEY:
            raise ConfigError(f"{where} the confirmation's seeds are study.confirm.seeds, not train.seed")
        for dim in spec.space:
            if dim.clashes_with(key):
                raise ConfigError(f"{where} is searched (search.{dim.key}); the confirmation retrains the "
                                  "searched values as they were")
        set_dotted(tree, key, value)
    try:
        ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        text = describe_validation_error(err, schema=ExperimentConfig, source=source)
        raise ConfigError(text.replace(f"{source}: key ", f"{source}: key study.confirm.set.", 1)) from None


def _check_study(spec: Spec, *, layers: list[tuple[str, dict[str, Any]]], set_keys: list[str]) -> None:
    """Cross-key checks: overlapping search keys, --set on searched keys, trials vs sampler and grid size."""
    s = spec.settings
    for i, dim in enumerate(spec.space):
        for other in spec.space[:i]:
            if common := sorted(dim.targets() & other.targets()):
                raise ConfigError(f"{_source_of(layers, ('search', dim.key))}: key search.{dim.key}: sets "
                                  f"{common[0]}, as search.{other.key} does")
        for set_key in set_keys:
            if dim.clashes_with(set_key):
                raise ConfigError(f"{spec.path} (--set): key {set_key}: is searched (search.{dim.key}); "
                                  f"drop the --set or override search.{dim.key}")
    _check_confirm_set(spec, layers=layers)
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
