"""Typed experiment configuration: the schema, one typed section per part of an experiment.

Every field is documented where it is declared; unknown keys and wrong types are rejected with the full dotted
key path (``cvae.errors.describe_validation_error``). Files are read by ``cvae.configfile``.
"""

from __future__ import annotations

import functools
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cvae.paths import expand, path_problem
from cvae.scoring import CRITERIA, DEFAULT_OBJECTIVE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: relative data paths that do not exist from the working directory are tried here."""


MAX_SEED = 2**32 - 1
"""Largest seed: every generator a run seeds (Python's, torch's, numpy's in Optuna's samplers) takes 0..2^32-1."""
MAX_WORD_LENGTH = 64
"""Longest word (characters) a data file may hold and decoding may emit: English verbs are far shorter."""


class _Section(BaseModel):
    # strict: a value has its field's own type (`true` is no latent size, `"3"` no integer); ints pass for floats
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False, strict=True)


class DataConfig(_Section):
    train: str = Field(default="data/train.txt", max_length=1000)
    """Training verbs in the lab format: one verb a line, `sp tp pg p`."""
    test: str = Field(default="data/test.txt", max_length=1000)
    """Test conversions: lab 2-column form (tenses by position) or 4-column `src tgt src_tense tgt_tense`."""
    heldout: str | None = Field(default="data/heldout.txt", max_length=1000)
    """Conversions of verbs not in train (4-column form) for generalization BLEU-4; null to skip."""
    val_pairs: int = Field(default=200, ge=0, le=100_000)
    """Validation conversions drawn (seeded by `train.eval_seed`) from train verbs, for checkpoint choice."""
    val_verbs: int = Field(default=0, ge=0, le=100_000)
    """Training rows (verbs) withheld from training (drawn with `train.eval_seed` among rows none of whose forms
    is a test word) for choosing checkpoints that convert verbs they never saw: `data.val_pairs` conversions of
    them are scored as `val/unseen_bleu4`, and `val/bleu4` then weighs them half (``cvae.evaluation``). Never the
    heldout file, which only reports. 0: no verb withheld."""
    max_verbs: int | None = Field(default=None, ge=1, le=10_000_000)
    """Use only the first N training verbs (for smoke tests); null uses all."""

    @field_validator("train", "test", "heldout")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the path is empty; name a file (or null for data.heldout)")
        if value is not None and (problem := path_problem(value)) is not None:
            raise ValueError(f"the path {problem}")
        return value

    def resolve(self, name: str) -> Path | None:
        """Path of the file named by field ``name``: as given if it exists, else under the project root."""
        value = getattr(self, name)
        if value is None:
            return None
        path = expand(value)
        if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
            return PROJECT_ROOT / path
        return path


class ModelConfig(_Section):
    rnn: Literal["gru", "lstm"] = "gru"
    """Recurrent cell of encoder and decoder."""
    hidden_size: int = Field(default=256, ge=1, le=8192)
    """RNN hidden state size."""
    latent_size: int = Field(default=32, ge=1, le=4096)
    """Size of the latent z."""
    cond_size: int = Field(default=8, ge=1, le=4096)
    """Size of the tense (condition) embedding."""
    embed_size: int = Field(default=256, ge=1, le=8192)
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
    decoder: Literal["lab", "attention", "copy"] = "lab"
    """What the decoder reads besides (z, tense). `lab`: nothing (the lab's architecture, whose spec forbids
    attention); `attention`: it also attends over the encoder's states of the source characters (Luong et al.
    2015), so a conversion can spell a verb it never saw letter by letter; `copy`: attention, and each step may copy
    the attended source letter instead of generating one (See et al. 2017), the usual lever for unseen stems. An
    attending decoder can bypass z (Bahuleyan et al. 2018); `source_dropout` keeps z in use. How prior samples
    are decoded: `sampling`."""
    source_dropout: float = Field(default=0.5, ge=0.0, le=1.0)
    """`attention`/`copy`: share of training words decoded from (z, tense) alone, with the source hidden, as prior
    samples are decoded. 0 lets the decoder ignore z: conversions may be good while noise decodes to nothing (the
    collapse map's decoder side); 1 never trains the attention. Ignored by `lab`."""
    source_z: Literal["posterior", "prior"] = "posterior"
    """`attention`/`copy`: the z a training word that reads its source is decoded with. `posterior`: its own draw
    from q(z | x), as in a VAE; `prior`: a draw from N(0, I), which says nothing of the word, so those words must be
    spelt from the source alone. Without `train.hallucinate`, both memorise (screening, seed 10: heldout BLEU-4 at
    most 0.78, falling as training goes on); with it and the bidirectional slots, 0.912 (`posterior`, test 1.000)
    and 0.915 (`prior`, hallucinate 1.0, test 0.951).
    Words decoded from z alone (`source_dropout`, prior fill) always use their posterior draw; conversions decode
    from the posterior mean."""
    sampling: Literal["direct", "lemma"] = "direct"
    """How a prior draw z is decoded under the four tenses (the Gaussian score, its checkpoint-choice figure and
    `studies.use sample`). `direct`: each tense's word from (z, tense) alone, as the lab decodes. `lemma`
    (`attention`/`copy` only; ignored by `lab`): two stages, as a generative story z -> lemma -> forms: the simple
    present is decoded from (z, tense) alone, and each other tense is decoded with the same z while the decoder
    reads that generated word as its source, as a conversion from the simple present does. The four forms of a
    draw are then one verb's, which `direct` leaves to chance between two verbs' codes; nothing is re-encoded
    from the training words, and a draw whose lemma is empty decodes to four empty words."""
    max_length: int = Field(default=25, ge=1, le=MAX_WORD_LENGTH)
    """Longest word greedy decoding may emit (characters, EOS excluded)."""

    @property
    def samples_via_lemma(self) -> bool:
        """Whether prior draws are decoded through their simple present (`sampling: lemma` on a decoder that reads
        a source; the lab decoder has none to read)."""
        return self.sampling == "lemma" and self.decoder != "lab"

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
    ramp: int = Field(default=10, ge=1, le=10**9)
    """`monotonic`: length of the ramp from beta_start to beta_max, in `unit`s (seed rule: 1000 epochs)."""
    unit: Literal["epoch", "step"] = "epoch"
    """Whether schedules advance per epoch or per optimizer step."""
    cycles: int = Field(default=4, ge=1, le=10**6)
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
    decay_epochs: int = Field(default=20, ge=1, le=10**9)
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
    epochs: int = Field(default=30, ge=1, le=100_000)
    """Number of passes over the training words."""
    batch_size: int = Field(default=64, ge=1, le=1_000_000)
    """Words per optimizer step (1 reproduces the seed's per-word SGD)."""
    cross_tense: bool = False
    """Decode each encoded word as its verb's form in a uniformly drawn tense (the train rows give all four),
    instead of reconstructing it under its own tense: teaches the latent to carry the verb, not the tense."""
    bucket: bool = True
    """Batch words of similar length together (less padding, faster); batches are still drawn in random order."""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    """Seed of every random draw: init, shuffling, teacher forcing, dropout, Gaussian-score noise."""
    num_threads: int = Field(default=1, ge=1, le=1024)
    """torch intra-op threads; 1 is fastest for these small models with one process per core."""
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:[0-9]{1,4})?)$")
    """Where the model and the data live for the run: `auto` (the first CUDA GPU when there is one, else the CPU),
    `cpu`, `cuda` or `cuda:N`. A CUDA device this machine does not have is refused before anything is written."""
    select: Literal[CRITERIA] = DEFAULT_OBJECTIVE  # type: ignore[valid-type]  # pydantic reads the tuple
    """Checkpoint criterion: the evaluated epoch maximising this figure is the reported checkpoint. It is
    measured on the validation figures (`val/bleu4` on `data.val_pairs` conversions of train verbs,
    `val/gaussian`: distinct training rows hit per draw, on noise drawn apart from the reported score's), never
    on the reported test figures; with `data.val_pairs: 0` the test figures themselves are used, as the lab did.
    An epoch whose posterior collapsed or overflowed is chosen only when no healthy epoch exists
    (`cvae.scoring`)."""
    prior_fill: float = Field(default=0.0, ge=0.0)
    """Weight of the prior-fill term (0: off). Each step also decodes a batch of prior draws z ~ N(0, I), each
    trained (teacher forced, in a drawn tense) to spell the training verb whose posterior mean (from that word's
    latest training step) lies nearest to it. Noise between two verbs' codes then decodes to one verb in all four
    tenses, instead of to a different verb per tense (the main way the Gaussian score is lost once the latent
    matches the prior). Costs one more decoder pass a step."""
    hallucinate: float = Field(default=0.0, ge=0.0, le=4.0)
    """Attending decoders (`model.decoder` attention or copy) only: each step also trains on round(hallucinate x
    batch_size) conversions of made-up verbs, a training verb's stem with its start replaced by another verb's
    (walk + grab -> gralk, gralks, gralking, gralked; ``cvae.hallucination``, after Anastasopoulos & Neubig 2019),
    always read from the source. A decoder cannot have memorised them, so it learns to copy a stem and rewrite
    its ending, as a verb it never saw needs. They never reach the z-only path, prior fill or any score. 0: off;
    ignored by `lab`, which has no source to read."""
    collapse_patience: int | None = Field(default=None, ge=1, le=100_000)
    """Collapse detector: stop the run (status `collapsed`) after this many consecutive evaluated epochs past the
    KL warm-up with KL < 0.1 nats or no active unit, or (status `unstable`) with an overflowing latent; null
    trains on. Studies turn it on (3) unless their spec says otherwise."""
    eval_every: int = Field(default=1, ge=1, le=100_000)
    """Evaluate (BLEU-4, Gaussian score, latent diagnostics) every N epochs and at the last epoch."""
    gaussian_samples: int = Field(default=100, ge=1, le=1_000_000)
    """Noise vectors drawn for the Gaussian score (the lab uses 100)."""
    select_samples: int = Field(default=400, ge=1, le=1_000_000)
    """Noise vectors drawn for the checkpoint-choice figure `val/gaussian` (its own draws, apart from the
    reported score's). More than the reported score's 100: a 100-draw figure varies by about +-0.05 from epoch to
    epoch, and choosing the epoch of its largest value would pick that noise."""
    eval_seed: int = Field(default=1234, ge=0, le=MAX_SEED)
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


@functools.cache
def schema_fields() -> dict[str, Any]:
    """The schema walked once: every dotted key (`kl`, `kl.beta_max`, ...) -> a section's model class, or a field's
    annotation. Every reader of the schema (search dimensions, block settings, params read back from MLflow) uses
    this walk."""
    out: dict[str, Any] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out[f"{prefix}{name}"] = annotation
                walk(annotation, f"{prefix}{name}.")
            else:
                out[f"{prefix}{name}"] = annotation

    walk(ExperimentConfig, "")
    return out


def is_section(annotation: Any) -> bool:
    """Whether a ``schema_fields`` entry is a section (a model) rather than a field."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def scalar_type(annotation: Any) -> type:
    """The Python type a field's value has: `float | None` -> float, `Literal["gru", "lstm"]` -> str."""
    origin = get_origin(annotation)
    if origin is Literal:
        return type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return scalar_type(next(a for a in get_args(annotation) if a is not type(None)))
    return annotation if isinstance(annotation, type) else str
