"""Experiment files: find, read (through the strict YAML loader), override with ``--set``, validate, dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cvae.config import PROJECT_ROOT, ExperimentConfig
from cvae.errors import ConfigError, describe_validation_error, short_repr
from cvae.paths import user_path
from cvae.yamlfile import Refused, StrictLoader, load_yaml


def parse_override(text: str) -> tuple[str, Any]:
    """`"optim.lr=0.01"` -> ("optim.lr", 0.01); the value is read as YAML (`null`, numbers, lists)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {short_repr(text)}: expected KEY=VALUE, e.g. --set optim.lr=0.01")
    try:
        value = yaml.load(raw, Loader=StrictLoader) if raw.strip() else ""  # noqa: S506 - a SafeLoader
    except Refused as exc:
        raise ConfigError(f"--set {short_repr(text)}: {exc.problem}") from None
    except (yaml.YAMLError, ValueError):  # not YAML: the text itself (validation says if it does not fit)
        value = raw
    return key, value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for key "a.b", creating sections as needed."""
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def build_config(raw: dict[str, Any], *, source: str, overrides: list[str] | None = None) -> ExperimentConfig:
    """Validate ``raw`` (plus ``--set`` overrides) into an ExperimentConfig or raise a one-line ConfigError."""
    tree = _deep_copy(raw)
    for text in overrides or []:
        try:
            key, value = parse_override(text)
        except ConfigError as exc:  # `--set KEY` without a value: name the file it was meant for, as studies do
            raise ConfigError(f"{source} (--set): {exc}") from None
        set_dotted(tree, key, value)
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, schema=ExperimentConfig, source=source)) from None


def load_config(path: str | Path, *, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment YAML (as given, or under `experiments/`) and apply ``--set`` overrides."""
    resolved = find_spec_file(path)
    return build_config(load_yaml(resolved), source=str(path), overrides=overrides)


def find_spec_file(path: str | Path) -> Path:
    """The file as given if it exists, else `experiments/NAME` under the working directory or project root."""
    if not str(path).strip():
        raise ConfigError("spec '': empty file name; give a YAML file, e.g. smoke.yaml")
    given = user_path(path, where="spec")
    for candidate in (given, Path("experiments") / given, PROJECT_ROOT / "experiments" / given):
        if candidate.is_file():
            return candidate
    if given.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML file")
    if given.exists():
        raise ConfigError(f"{path}: not a regular file (a device or a pipe); give a YAML file")
    raise ConfigError(f"{path}: file not found (also looked under experiments/)")


def _deep_copy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _deep_copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_deep_copy(v) for v in tree]
    return tree


def dump_config(config: ExperimentConfig) -> str:
    """The resolved config as YAML (saved with every checkpoint)."""
    return yaml.safe_dump(config.model_dump(), sort_keys=False)


