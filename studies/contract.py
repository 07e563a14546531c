"""What a study stores besides the epoch figures (``cvae.names``), defined once: the chosen checkpoint's figures
and the run's own, as MLflow metrics and Optuna trial attributes, and every trial attribute's name.

docs/tracking-contract.md describes it for people; tests/studies/test_contract.py checks that it names every key here.
The writers (``studies.worker``, ``studies.tracking``, ``studies.testing``) and the readers (``studies.queue``,
``studies.ui.display``, ``studies.best``, ``studies.report``) import these names; none spells one out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from cvae import names

BEST_PREFIX = "best/"
"""The chosen checkpoint's copy of an epoch figure: ``best/`` + its key (``best/test/bleu4``), one checkpoint for
all of them. The same names in MLflow (final metrics) and in Optuna (trial attributes)."""


def best(key: str) -> str:
    """The chosen checkpoint's copy of the epoch figure ``key``."""
    return BEST_PREFIX + key


BEST_EPOCH = "best/epoch"
"""The chosen checkpoint's epoch (1-based)."""
BEST_FIGURES: tuple[str, ...] = (names.TEST_BLEU, names.TEST_GAUSSIAN, names.TEST_GAUSSIAN_UNIQUE,
                                 names.HELDOUT_BLEU, names.VAL_BLEU, names.VAL_GAUSSIAN, names.VAL_UNSEEN_BLEU,
                                 names.LATENT_KL,
                                 names.LATENT_LOGVAR_ABSMAX, names.LATENT_ACTIVE_UNITS, names.LATENT_MUTUAL_INFO)
"""Epoch figures whose chosen-checkpoint copy a trial's MLflow run keeps (``best(key)``)."""
TRIAL_FIGURES: tuple[str, ...] = (names.TEST_BLEU, names.TEST_GAUSSIAN, names.TEST_GAUSSIAN_UNIQUE, names.VAL_BLEU,
                                  names.VAL_GAUSSIAN)
"""Epoch figures whose chosen-checkpoint copy the Optuna trial keeps too (``best(key)``): the queue ranks
configurations on the ``val/*`` ones, the display shows the ``test/*`` ones."""

RUN_PREFIX = "run/"
"""Figures of the run as a whole (not of one checkpoint)."""
RUN_WALL_TIME = "run/wall_time_s"
"""Seconds the trial took, recording included."""
RUN_DIVERGED = "run/diverged"
"""1 when the loss or a gradient became non-finite, else 0."""
RUN_EPOCHS_DONE = "run/epochs_done"
"""Epochs trained to their end."""
RUN_GRAD_NORM_MAX = "run/grad_norm_max"
"""Largest finite pre-clip gradient norm of the run, every step counted (also for a diverged run)."""
RUN_RULE_HELDOUT_BLEU = "run/rule_heldout_bleu4"
"""Heldout BLEU-4 of the rule baseline learnt from the run's training file (``cvae.rules``): the floor for unseen
verbs, printed beside the model's ``best/heldout/bleu4``."""
RUN_FIGURES = (RUN_GRAD_NORM_MAX, RUN_WALL_TIME, RUN_EPOCHS_DONE, RUN_DIVERGED, RUN_RULE_HELDOUT_BLEU)
TRACE_PREFIX = "trace/"
"""Per-step figures (step = optimizer step) of a run's first steps, and up to the non-finite step of a divergence:
``trace/`` + a key of ``cvae.trainer.TRACE_KEYS``."""

# Optuna trial attributes (user attrs): who wrote them and what they hold.
STATUS = "status"
"""The trial's status (``cvae.scoring.STATUSES``; ``duplicate`` for a draw of a configuration already sampled)."""
ERROR = "error"
"""Why a failed trial failed, one line."""
WORKER = "worker"
"""``host:pid`` of the worker process that claimed it."""
CONFIG_KEY = "config_key"
"""``studies.spec.config_key``: groups the seeds of one configuration."""
SEED = "seed"
"""``train.seed`` of the trial."""
RUN_ID = "mlflow_run_id"
"""The trial's MLflow child run."""
TRACKING_S = "tracking_s"
"""Seconds the worker spent in MLflow calls for the trial."""
WALL_S = "wall_s"
"""Seconds the trial took in its worker, recording included."""
DIVERGED_STEP = "diverged_step"
"""The optimizer step whose loss or gradient was non-finite."""
DIVERGENCE_CAUSE = "divergence_cause"
"""What was non-finite, one line."""
TRIAL_ATTRS: tuple[str, ...] = (STATUS, ERROR, WORKER, CONFIG_KEY, SEED, RUN_ID, TRACKING_S, WALL_S, DIVERGED_STEP,
                                DIVERGENCE_CAUSE, BEST_EPOCH, *(best(key) for key in TRIAL_FIGURES))
"""Every trial attribute a study writes."""

# Optuna study attributes
SPEC_DIGEST = "cvae.spec_digest"
"""Digest of the spec a study was made from: a resume with another spec is refused."""
OBJECTIVE = "cvae.objective"
"""The study's objective (also an MLflow tag of the parent run)."""
HEARTBEAT = "cvae.heartbeat"
"""Seconds between heartbeats of an RDB study: every process must agree on when a trial is dead."""

# The chosen checkpoint's figures by name, for the readers (report, tables, studies.best)
BEST_TEST_BLEU = best(names.TEST_BLEU)
BEST_TEST_GAUSSIAN = best(names.TEST_GAUSSIAN)
BEST_TEST_GAUSSIAN_UNIQUE = best(names.TEST_GAUSSIAN_UNIQUE)
BEST_HELDOUT_BLEU = best(names.HELDOUT_BLEU)
BEST_VAL_BLEU = best(names.VAL_BLEU)
BEST_VAL_GAUSSIAN = best(names.VAL_GAUSSIAN)
BEST_VAL_UNSEEN_BLEU = best(names.VAL_UNSEEN_BLEU)
BEST_LATENT_KL = best(names.LATENT_KL)
BEST_LATENT_LOGVAR_ABSMAX = best(names.LATENT_LOGVAR_ABSMAX)
BEST_LATENT_ACTIVE_UNITS = best(names.LATENT_ACTIVE_UNITS)
BEST_LATENT_MUTUAL_INFO = best(names.LATENT_MUTUAL_INFO)


class Phase(StrEnum):
    """The two phases of a study (tag `cvae.phase`): the search, and the confirmation of its top configurations on
    fresh seeds."""

    SEARCH = "search"
    CONFIRM = "confirm"


DUPLICATE = "duplicate"
"""`status` of a trial pruned unrun because the sampler drew a configuration it had drawn before (not a status of
``cvae.scoring.Status``: no run is made for it)."""

RunEnd = Literal["FINISHED", "FAILED", "KILLED"]
"""How an MLflow run is ended: trained to a decision, failed (a crash, a divergence), or interrupted."""


# MLflow run tags (docs/tracking-contract.md says what each holds)
TAG_ROLE = "cvae.role"
"""`study` (the parent run) or `trial` (a child run)."""
TAG_STUDY = "cvae.study"
"""The study's name."""
TAG_OBJECTIVE = "cvae.objective"
"""The study's objective (parent run)."""
TAG_RANK_BY = "cvae.rank_by"
"""How seeds were summed up to rank a configuration (parent run)."""
TAG_SPEC = "cvae.spec"
"""The spec file (parent run)."""
TAG_STORAGE = "optuna.storage"
"""The Optuna storage, password redacted (parent run)."""
TAG_PARENT = "mlflow.parentRunId"
"""MLflow's own: the parent run of a child run."""
TAG_TRIAL_NUMBER = "optuna.trial_number"
"""The Optuna trial a child run records."""
TAG_STATE = "optuna.state"
"""The trial's Optuna state (`COMPLETE`, `PRUNED`, `FAIL`)."""
TAG_STATUS = "cvae.status"
"""The trial's status (``cvae.scoring.Status``)."""
TAG_PHASE = "cvae.phase"
"""``Phase``: search or confirm."""
TAG_BLOCKS = "cvae.blocks"
"""The blocks a configuration belongs to (``blocks_tag``)."""
TAG_DEVICE = "cvae.device"
"""Where the trial trained."""
TAG_CONFIG_KEY = "cvae.config_key"
"""12-hex digest of the config without its seed."""
TAG_SEARCHED_KEY = "cvae.searched_key"
"""A confirmation run trained with `study.confirm.set`: the `cvae.config_key` of its configuration as the search
trained it (the report shows its search figures beside the confirmed ones)."""
TAG_SEED = "cvae.seed"
"""The trial's `train.seed`."""
TAG_DIVERGED_STEP = "cvae.diverged_step"
"""The optimizer step whose loss or gradient was non-finite."""
TAG_DIVERGENCE_CAUSE = "cvae.divergence_cause"
"""What was non-finite."""
TAG_NONFINITE = "cvae.nonfinite"
"""The first tensor found non-finite."""
TAG_STOPPED_EPOCH = "cvae.stopped_epoch"
"""The epoch the collapse detector stopped the run at."""
TAG_BEST_EPOCH = "cvae.best_epoch"
"""The chosen checkpoint's epoch."""
TAG_ERROR = "cvae.error"
"""Why a trial failed."""
TRACEBACK_ARTIFACT = "traceback.txt"
"""Artifact of a crashed trial's run: the full traceback (``TAG_ERROR`` holds one line and says where this is)."""
ROLE_STUDY, ROLE_TRIAL = "study", "trial"
"""Values of ``TAG_ROLE``."""
ROLE_FILTER = f"tags.`{TAG_ROLE}` = '{{role}}'"
"""An MLflow search filter for the runs of one role."""
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
"""Experiment tag of a model-training experiment (MLflow 3.17's UI ignores it: its GenAI / model-training switch lives
in the browser's local storage, so ``studies.ui`` prints an address that asks for model training)."""


def blocks_tag(blocks: tuple[str, ...] | list[str]) -> str:
    """``TAG_BLOCKS`` of a configuration in ``blocks`` (block names never hold a `+`: ``studies.spec.Block``)."""
    return "+".join(blocks)


def blocks_of_tag(text: str | None) -> tuple[str, ...]:
    """The block names ``blocks_tag`` wrote; () without blocks."""
    return tuple(name for name in (text or "").split("+") if name)


# Worker -> board messages (over a pipe, so they are small frozen records)


@dataclass(frozen=True)
class TrialStarted:
    """A worker claimed a trial and starts training it."""

    trial: int
    worker: int
    pid: int
    params: dict[str, Any]
    epochs: int
    device: str


@dataclass(frozen=True)
class EpochDone:
    """A running trial finished an evaluated epoch: its test figures so far."""

    trial: int
    epoch: int
    bleu4: float
    """`test/bleu4` of the epoch."""
    gaussian_unique: float
    """`test/gaussian_unique` of the epoch."""


@dataclass(frozen=True)
class TrialEnded:
    """A trial ended and was told to Optuna."""

    trial: int
    state: str
    """Optuna's ``TrialState`` name: COMPLETE, PRUNED or FAIL."""
    values: list[float] | None
    seconds: float
    attrs: dict[str, Any]
    """The trial's attributes as Optuna holds them (``TRIAL_ATTRS``: status, chosen-checkpoint figures, cause)."""


Message = TrialStarted | EpochDone | TrialEnded
"""What a worker tells the board."""
