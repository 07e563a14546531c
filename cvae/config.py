"""Typed experiment configuration: schema here, values in YAML, overrides from ``--set key=value``.

Every field is documented where it is declared. Unknown keys and wrong types are rejected with the full
dotted key path and, for a typo, a "did you mean".
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import reprlib
import tempfile
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cvae.scoring import CRITERIA, DEFAULT_OBJECTIVE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: relative data paths that do not exist from the working directory are tried here."""


MAX_MESSAGE = 300
"""Longest user-facing error line: a longer one is cut at its end (its start names the file and the key or line)."""


def one_line(text: object, *, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line (newlines and runs of spaces folded), cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def short_repr(value: object) -> str:
    """``repr(value)`` bounded in size (a 10k-element list is shown as its first few elements)."""
    return _REPR.repr(value)


def _bounded_repr() -> reprlib.Repr:
    bounded = reprlib.Repr()
    bounded.maxlevel, bounded.maxlist, bounded.maxdict, bounded.maxstring, bounded.maxother = 3, 8, 8, 60, 60
    return bounded


_REPR = _bounded_repr()


class UserError(ValueError):
    """A user-facing error: always one line of at most ``MAX_MESSAGE`` characters, whatever it quotes."""

    def __init__(self, message: object) -> None:
        super().__init__(one_line(message))


class ConfigError(UserError):
    """A one-line, user-facing error in a config or spec: names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)


class DataConfig(_Section):
    train: str = Field(default="data/train.txt", max_length=1000)
    """Training verbs in the lab format: one verb a line, `sp tp pg p`."""
    test: str = Field(default="data/test.txt", max_length=1000)
    """Test conversions: lab 2-column form (tenses by position) or 4-column `src tgt src_tense tgt_tense`."""
    heldout: str | None = Field(default="data/heldout.txt", max_length=1000)
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
    select: Literal[CRITERIA] = DEFAULT_OBJECTIVE
    """Checkpoint criterion: the evaluated epoch maximising this figure is the reported checkpoint. It is
    measured on the validation figures (`val/bleu4` on `data.val_pairs` conversions of train verbs,
    `val/gaussian`: distinct training rows hit per draw, on noise drawn apart from the reported score's), never
    on the reported test figures; with `data.val_pairs: 0` the test figures themselves are used, as the lab did.
    An epoch whose posterior collapsed or overflowed is chosen only when no healthy epoch exists
    (`cvae.scoring`)."""
    prior_fill: float = Field(default=0.0, ge=0.0)
    """Weight of the prior-fill term (0: off). Each step also decodes a batch of prior draws z ~ N(0, I), each
    trained (teacher forced, in a drawn tense) to spell the training verb whose posterior mean, as of the start of
    the epoch, lies nearest to it. Noise between two verbs' codes then decodes to one verb in all four tenses,
    instead of to a different verb per tense (the main way the Gaussian score is lost once the latent matches the
    prior). Costs one more decoder pass a step."""
    collapse_patience: int | None = Field(default=None, ge=1)
    """Collapse detector: stop the run (status `collapsed`) after this many consecutive evaluated epochs past the
    KL warm-up with KL < 0.1 nats or no active unit, or (status `unstable`) with an overflowing latent; null
    trains on. Studies turn it on (3) unless their spec says otherwise."""
    eval_every: int = Field(default=1, ge=1)
    """Evaluate (BLEU-4, Gaussian score, latent diagnostics) every N epochs and at the last epoch."""
    gaussian_samples: int = Field(default=100, ge=1)
    """Noise vectors drawn for the Gaussian score (the lab uses 100)."""
    select_samples: int = Field(default=400, ge=1)
    """Noise vectors drawn for the checkpoint-choice figure `val/gaussian` (its own draws, apart from the
    reported score's). More than the reported score's 100: a 100-draw figure varies by about +-0.05 from epoch to
    epoch, and choosing the epoch of its largest value would pick that noise."""
    eval_seed: int = 1234
    """Seed of the Gaussian-score noise, fixed across epochs so that checkpoints are compared on the same draws."""


class ExperimentConfig(_Section):
    """One experiment: everything `cvae.trainer.fit` needs."""

    name: str = Field(default="experiment", max_length=200)
    """Free-form name shown in logs (and logged to MLflow as a param, whose values have a length limit)."""
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
    whole = first["type"] == "value_error" and isinstance(first.get("input"), dict)  # a section's own check
    if "input" in first and first["type"] not in ("missing",) and not whole:
        extra = f", got {short_repr(first['input'])}"
    return f"{source}: key {key}: {msg}{extra}"


MAX_YAML_BYTES = 1_000_000
"""Largest YAML file read: a spec or an experiment is a few KB; a bigger file is refused before it is parsed."""
MAX_YAML_DEPTH = 32
"""Deepest nesting of mappings and lists in a YAML file."""


class Refused(yaml.MarkedYAMLError):
    """YAML that ``StrictLoader`` refuses though YAML allows it (an alias, a key given twice): not a syntax error."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, stricter, for every YAML text the project reads (``load_yaml``, ``--set`` values):
    anchors and aliases are refused where they appear, so an alias bomb ("billion laughs") is refused at its first
    anchor, before anything is expanded; a key given twice in one mapping is refused with both lines (YAML
    would keep the last silently); merge keys (``<<``) are refused; nesting deeper than ``MAX_YAML_DEPTH`` is
    refused (no recursion error); a scalar Python cannot build (a 5000-digit integer, 2024-02-30) is refused with
    its line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise Refused(None, None, "YAML anchors and aliases (&name, *name) are not supported; write the values "
                          "out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise Refused(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # int('9' * 5000), date(2024, 2, 30)
            raise Refused(None, None, f"cannot read {short_repr(node.value)}: {exc}", node.start_mark) from None

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise Refused(None, None, "merge keys (<<) are not supported; write the keys out",
                                  key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:  # unhashable: SafeLoader's own error says so, with the line
                    break
                line = key_node.start_mark.line + 1
                if seen:
                    lines = f"line {line}" if first[key] == line else f"lines {first[key]} and {line}"
                    raise Refused(None, None, f"key {short_repr(key)} is given twice ({lines}); keep one",
                                  key_node.start_mark)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping (a spec, an experiment) with ``StrictLoader``: the one reader of every YAML file.

    A missing file, a folder, a file over ``MAX_YAML_BYTES``, binary or non-UTF-8 bytes, a YAML error, an empty or
    comment-only file, or anything but a mapping at the top is a one-line ConfigError naming the file and the line.
    A UTF-8 byte-order mark is accepted."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: is {path.stat().st_size} bytes, larger than the {MAX_YAML_BYTES} a spec may be")
    text = _decode(path, data)
    loader = None
    try:
        loader = StrictLoader(text)  # its reader refuses control characters right away
        root = loader.get_single_node()  # yaml.load's steps, keeping the root node's position
        tree = None if root is None else loader.construct_document(root)
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{path}: line {line}: character {chr(exc.character)!r} is not allowed in YAML "
                          "text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        kind = "" if isinstance(exc, Refused) else "YAML syntax error: "
        raise ConfigError(f"{path}: {where}: {kind}{problem}") from None
    except RecursionError:  # deeper than the composer: only flow collections nested beyond any sense
        raise ConfigError(f"{path}: YAML: nested more than {MAX_YAML_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()
    if tree is None:
        raise ConfigError(f"{path}: spec is empty (no keys: only blank lines or comments); write at least "
                          "`extends: baseline.yaml`")
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: line {root.start_mark.line + 1}: expected a mapping of sections at the top "
                          f"level, got {type(tree).__name__}")
    return tree


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text of a YAML file (a byte-order mark dropped); binary or other encodings are a ConfigError."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"{path}: line 1: UTF-16 text (its byte-order mark); save the file as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    if (nul := data.find(b"\0")) >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(f"{path}: line {line}: NUL byte: a binary file, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file "
                          "as UTF-8") from None


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
    given = Path(path)
    if not str(path).strip():
        raise ConfigError("spec '': empty file name; give a YAML file, e.g. smoke.yaml")
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


# ---------------------------------------------------------------------------------------------------------
# Command lines: one-line argument errors, outputs checked before anything runs


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with every argument error as ONE line on stderr, `PROG: error: MESSAGE (see --help)`,
    and exit status 2, like every other bad input (argparse prints its usage block first); subcommands inherit it.
    Flags must be given whole: `--tracking` is not taken for `--tracking-uri`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def add_set_argument(parser: argparse.ArgumentParser, *, example: str = "optim.lr=0.01") -> None:
    """The one `--set KEY=VALUE [KEY=VALUE ...]` option (repeatable) of every command that reads a spec."""
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help=f"override any key of the spec, e.g. --set {example} (repeatable; several after one --set)")


def check_output(path: Path, *, flag: str, folder: bool = False) -> None:
    """Refuse, before anything runs, an output path that cannot be written: for a file (``folder=False``) an
    existing folder; for a folder an existing file; under a file; or in a folder where no file can be made (tried
    with an unnamed temporary file, so nothing is left behind). Creates nothing; a one-line ConfigError."""
    shown = str(path) or "''"
    if not str(path).strip():
        raise ConfigError(f"{flag} '': empty path; give a {'folder' if folder else 'file'} path")
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {shown}: is an existing file, not a folder; give a new or existing folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag} {shown}: is a folder; give a file path, e.g. {path / 'model.pt'}")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {shown}: {parent} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise ConfigError(f"{flag} {shown}: cannot write in {parent} ({exc.strerror or type(exc).__name__})") from None
    if not folder and path.exists():
        try:
            path.open("r+b").close()
        except OSError as exc:
            raise ConfigError(f"{flag} {shown}: cannot overwrite it ({exc.strerror or type(exc).__name__})") from None
