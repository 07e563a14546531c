"""Typed experiment configuration: schema here, values in YAML, overrides from ``--set key=value``.

Every field is documented where it is declared. Unknown keys and wrong types are rejected with the full
dotted key path and, for a typo, a "did you mean".
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: relative data paths that do not exist from the working directory are tried here."""


class ConfigError(ValueError):
    """A one-line, user-facing error in a config or spec: names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)


class DataConfig(_Section):
    train: str = "data/train.txt"
    """Training verbs in the lab format: one verb a line, `sp tp pg p`."""
    test: str = "data/test.txt"
    """Test conversions: lab 2-column form (tenses by position) or 4-column `src tgt src_tense tgt_tense`."""
    heldout: str | None = "data/heldout.txt"
    """Conversions of verbs not in train (4-column form) for generalization BLEU-4; null to skip."""
    val_pairs: int = Field(default=200, ge=0)
    """Validation conversions drawn (seeded by `train.eval_seed`) from train verbs, for checkpoint choice."""
    max_verbs: int | None = Field(default=None, ge=1)
    """Use only the first N training verbs (for smoke tests); null uses all."""

    def resolve(self, name: str) -> Path | None:
        """Path of the file named by field ``name``: as given if it exists, else under the project root."""
        value = getattr(self, name)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
            return PROJECT_ROOT / path
        return path


class ModelConfig(_Section):
    rnn: Literal["gru", "lstm"] = "gru"
    """Recurrent cell of encoder and decoder."""
    hidden_size: int = Field(default=256, ge=1)
    """RNN hidden state size."""
    latent_size: int = Field(default=32, ge=1)
    """Size of the latent z."""
    cond_size: int = Field(default=8, ge=1)
    """Size of the tense (condition) embedding."""
    embed_size: int = Field(default=256, ge=1)
    """Size of the character embedding."""
    word_dropout: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability of replacing a decoder input character by UNK during training (Bowman et al. 2016)."""
    latent_to_cell: bool = False
    """LSTM only: map (z, tense) to the decoder's cell state as well as its hidden state."""
    z_every_step: bool = False
    """Feed (z, tense) to the decoder at every character step (concatenated to the character embedding), not only
    through its initial state: the decoder cannot drift away from the latent as the word gets longer."""
    mu_bn: float | None = Field(default=None, gt=0.0)
    """BN-VAE (Zhu et al. 2020): batch-normalise the posterior mean per dimension with this fixed scale (a
    learnt shift); every dimension then keeps a KL of at least about scale^2 / 2 nats, so it cannot collapse,
    and the means' spread stays near the prior's. null: no normalisation."""
    max_length: int = Field(default=25, ge=1)
    """Longest word greedy decoding may emit (characters, EOS excluded)."""

    @model_validator(mode="after")
    def _cond_fits(self) -> "ModelConfig":
        if self.cond_size >= self.hidden_size:
            raise ValueError(f"cond_size ({self.cond_size}) must be smaller than hidden_size ({self.hidden_size})")
        return self


class KLConfig(_Section):
    schedule: Literal["constant", "monotonic", "cyclical"] = "cyclical"
    """KL-weight schedule: `constant` (beta_max), `monotonic` (linear ramp), `cyclical` (Fu et al. 2019)."""
    beta_max: float = Field(default=1.0, ge=0.0)
    """Largest KL weight (the constant value for `constant`)."""
    beta_start: float = Field(default=0.0, ge=0.0)
    """KL weight at the start of a `monotonic` ramp."""
    ramp: int = Field(default=10, ge=1)
    """`monotonic`: length of the ramp from beta_start to beta_max, in `unit`s (seed rule: 1000 epochs)."""
    unit: Literal["epoch", "step"] = "epoch"
    """Whether schedules advance per epoch or per optimizer step."""
    cycles: int = Field(default=4, ge=1)
    """`cyclical`: number of cycles M over the whole run."""
    ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    """`cyclical`: fraction R of each cycle spent ramping up; the rest stays at beta_max."""
    free_bits: float = Field(default=0.0, ge=0.0)
    """Free bits lambda (nats per latent dimension): each dimension's batch-mean KL is floored at lambda."""


class TeacherForcingConfig(_Section):
    schedule: Literal["constant", "linear"] = "constant"
    """`constant` keeps `start`; `linear` decays from `start` to `end` over `decay_epochs`."""
    start: float = Field(default=1.0, ge=0.0, le=1.0)
    """Teacher-forcing ratio at epoch 0: chance that a training step feeds the decoder the true characters
    (otherwise it is fed its own previous outputs). Decided once per optimizer step, as the seed did per word."""
    end: float = Field(default=0.5, ge=0.0, le=1.0)
    """`linear`: ratio reached after `decay_epochs` and kept afterwards."""
    decay_epochs: int = Field(default=20, ge=1)
    """`linear`: epochs to go from `start` to `end`."""


class OptimConfig(_Section):
    name: Literal["sgd", "adam", "adamw"] = "adam"
    """Optimizer."""
    lr: float = Field(default=3e-3, gt=0.0)
    """Learning rate."""
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    """SGD momentum (ignored by Adam/AdamW)."""
    weight_decay: float = Field(default=0.0, ge=0.0)
    """Weight decay (decoupled for AdamW)."""
    clip_norm: float | None = Field(default=1.0, gt=0.0)
    """Clip gradients to this global L2 norm; null means no clipping."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """`constant` keeps `lr`; `cosine` anneals it per step from `lr` to `lr * lr_final` at the last step."""
    lr_final: float = Field(default=0.05, ge=0.0, le=1.0)
    """`cosine`: the learning rate at the end of training, as a fraction of `lr`."""


class TrainConfig(_Section):
    epochs: int = Field(default=30, ge=1)
    """Number of passes over the training words."""
    batch_size: int = Field(default=64, ge=1)
    """Words per optimizer step (1 reproduces the seed's per-word SGD)."""
    cross_tense: bool = False
    """Decode each encoded word as its verb's form in a uniformly drawn tense (the train rows give all four),
    instead of reconstructing it under its own tense: teaches the latent to carry the verb, not the tense."""
    bucket: bool = True
    """Batch words of similar length together (less padding, faster); batches are still drawn in random order."""
    seed: int = 0
    """Seed of every random draw: init, shuffling, teacher forcing, dropout, Gaussian-score noise."""
    num_threads: int = Field(default=1, ge=1)
    """torch intra-op threads; 1 is fastest for these small models with one process per core."""
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    """Where the model and the data live for the run: `auto` (the first CUDA GPU when there is one, else the CPU),
    `cpu`, `cuda` or `cuda:N`. A CUDA device this machine does not have is refused before anything is written."""
    select: Literal["bleu4", "gaussian", "bleu4+gaussian", "min_of_both", "last"] = "bleu4+gaussian"
    """Checkpoint criterion: the evaluated epoch maximising this figure is the reported checkpoint. It is
    measured on the validation figures (`select/bleu4` on `data.val_pairs` conversions of train verbs,
    `select/gaussian`: distinct training rows hit per draw, on noise drawn apart from the reported score's), never
    on the reported test figures; with `data.val_pairs: 0` the test figures themselves are used, as the lab did.
    An epoch whose posterior collapsed or overflowed is chosen only when no healthy epoch exists
    (`cvae.scoring`)."""
    collapse_patience: int | None = Field(default=None, ge=1)
    """Collapse detector: stop the run (status `collapsed`) after this many consecutive evaluated epochs past the
    KL warm-up with KL < 0.1 nats or no active unit, or (status `unstable`) with an overflowing latent; null
    trains on. Studies turn it on (3) unless their spec says otherwise."""
    eval_every: int = Field(default=1, ge=1)
    """Evaluate (BLEU-4, Gaussian score, latent diagnostics) every N epochs and at the last epoch."""
    gaussian_samples: int = Field(default=100, ge=1)
    """Noise vectors drawn for the Gaussian score (the lab uses 100)."""
    eval_seed: int = 1234
    """Seed of the Gaussian-score noise, fixed across epochs so that checkpoints are compared on the same draws."""


class ExperimentConfig(_Section):
    """One experiment: everything `cvae.train.fit` needs."""

    name: str = "experiment"
    """Free-form name shown in logs."""
    data: DataConfig = DataConfig()
    """Data files."""
    model: ModelConfig = ModelConfig()
    """Encoder/decoder architecture."""
    kl: KLConfig = KLConfig()
    """KL-weight schedule and free bits."""
    teacher_forcing: TeacherForcingConfig = TeacherForcingConfig()
    """Teacher-forcing schedule."""
    optim: OptimConfig = OptimConfig()
    """Optimizer and gradient clipping."""
    train: TrainConfig = TrainConfig()
    """Training loop, seeding and checkpoint choice."""

    def flat(self) -> dict[str, Any]:
        """Every field as a dotted key (`optim.lr`), for logging as params."""
        return flatten(self.model_dump())


# ---------------------------------------------------------------------------------------------------------
# Loading, overrides and error messages


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {"a.b.c": value}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`"optim.lr=0.01"` -> ("optim.lr", 0.01); the value is read as YAML (`null`, numbers, lists)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optim.lr=0.01")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
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


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names of the fields of the (nested) model at ``loc``; [] when loc does not lead to a model."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def describe_validation_error(err: ValidationError, *, schema: type[BaseModel], source: str, prefix: str = "") -> str:
    """First error of ``err`` as one line: `SOURCE: key a.b.c: what was wrong (did you mean x?)`."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = prefix + ".".join(str(p) for p in loc) if loc else (prefix.rstrip(".") or "<top>")
    if first["type"] == "extra_forbidden":
        candidates = _fields_at(schema, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), candidates, n=1)
        hint = f" (did you mean '{prefix}{'.'.join(str(p) for p in (*loc[:-1], close[0]))}'?)" if close else (
            f" (allowed: {', '.join(candidates)})" if candidates else "")
        return f"{source}: key {key}: unknown key{hint}"
    msg = first["msg"].replace("Value error, ", "")
    extra = ""
    if "input" in first and first["type"] not in ("missing",):
        extra = f", got {first['input']!r}"
    return f"{source}: key {key}: {msg}{extra}"


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, a syntax error or a non-mapping is a one-line ConfigError."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}: YAML syntax error: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def build_config(raw: dict[str, Any], *, source: str, overrides: list[str] | None = None) -> ExperimentConfig:
    """Validate ``raw`` (plus ``--set`` overrides) into an ExperimentConfig or raise a one-line ConfigError."""
    tree = _deep_copy(raw)
    for text in overrides or []:
        key, value = parse_override(text)
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
    given = Path(path)
    for candidate in (given, Path("experiments") / given, PROJECT_ROOT / "experiments" / given):
        if candidate.is_file():
            return candidate
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
