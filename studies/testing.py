"""Synthetic studies in a real MLflow store, shipped for tests and benchmarks (as optuna ships optuna.testing)."""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from cvae.config import ExperimentConfig
from cvae.names import EPOCH, VAL_UNSEEN_BLEU
from cvae.scoring import FINISHED, Status
from studies import contract, tracking
from studies.contract import BEST_EPOCH, BEST_FIGURES, Phase, best
from studies.spec import params_key

STEP_KEYS: tuple[str, ...] = tuple(key for key in EPOCH if key != VAL_UNSEEN_BLEU)  # no verb withheld
"""Every step metric of the contract (step = epoch, 1-based)."""
STATE_OF: dict[str, str] = {**{status: "COMPLETE" for status in FINISHED}, Status.PRUNED: "PRUNED",
                            Status.DIVERGED: "FAIL", Status.FAILED: "FAIL"}


@dataclass
class SyntheticTrial:
    """One child run: its flat config (``train.seed`` included), status and every figure logged."""

    number: int
    params: dict[str, Any]
    status: str
    history: dict[str, list[float]] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str = ""

    @property
    def config_key(self) -> str:
        return config_key(self.params)


config_key = params_key
"""The contract's `cvae.config_key` of a flat config (``studies.spec.params_key``)."""


def _curves(status: str, params: dict[str, Any], epochs: int, rng: random.Random,
            gaming: bool = False) -> dict[str, list[float]]:
    latent = params["model.latent_size"]
    out: dict[str, list[float]] = {key: [] for key in STEP_KEYS}
    for e in range(1, epochs + 1):
        rise = 1.0 - math.exp(-e / 2.0)
        noise = lambda scale: rng.uniform(-scale, scale)  # noqa: E731
        shapes: dict[str, tuple[float, ...]] = {
            Status.COLLAPSED: (0.07 * rise, 0.01, 0.02, 0.0, 0.01, 3.0),
            Status.PRIOR_HOLE: (0.85 * rise, 0.0, 30.0 + e, float(latent), 4.0, 6.0),
            Status.DIVERGED: (0.3 * rise, 0.05, 5.0, latent / 2, 1.0, 10.0 * 100.0 ** e),
            Status.UNSTABLE: (0.1 * rise, 0.0, 8e12, float(latent), 0.0, 5e9),
            Status.WEAK: (0.5 * rise, 0.1 * rise, 6.0 + e, 0.6 * latent, 3.0, 5.0),
        }
        bleu, gauss, kl, au, mi, grad = shapes.get(status, (0.9 * rise, 0.4 * rise, 8.0 + e, 0.6 * latent, 3.0, 5.0))
        # the lab's Gaussian: a collapsed decoder repeats one training row for every z and scores 1.0
        record = {
            "test/bleu4": max(0.0, bleu + noise(0.03)), "heldout/bleu4": max(0.0, 0.8 * bleu + noise(0.03)),
            "test/gaussian": 1.0 if status == Status.COLLAPSED else max(0.0, gauss + noise(0.02)),
            "test/gaussian_unique": max(0.0, gauss + noise(0.02)), "latent/logvar_absmax": 40.0 if kl > 1e4 else 3.0,
            "val/bleu4": max(0.0, bleu + noise(0.05)) if not gaming else 0.99,
            "val/gaussian": max(0.0, gauss + noise(0.04)) if not gaming else 0.99,
            "latent/kl": max(0.0, kl * (1 + noise(0.1))),
            "latent/active_units": round(au), "latent/mutual_info": mi, "train/kl": kl,
            "train/grad_norm_max": grad * (1 + noise(0.2)), "train/grad_norm_mean": grad / 3,
            "train/loss": 20.0 / e, "train/recon": 18.0 / e, "train/kl_weight": min(1.0, e / 4), "train/tf_ratio": 1.0,
            "train/lr": params["optim.lr"],
            "train/words_per_s": 800.0 + noise(50), "train/epoch_time_s": 6.0 + noise(0.5),
        }
        for module in ("encoder", "decoder"):
            record[f"train/grad_norm_{module}_max"] = record["train/grad_norm_max"] / 2
            record[f"train/grad_norm_{module}_mean"] = record["train/grad_norm_mean"] / 2
        for key in STEP_KEYS:
            out[key].append(float(record[key]))
    return out


def make_trial(*, number: int, overrides: dict[str, Any], seed: int, status: str, epochs: int = 4,
               diverge_epoch: int = 2, gaming: bool = False, phase: str = "search") -> SyntheticTrial:
    """A trial of ``status`` (works, weak, collapsed, prior_hole, unstable, diverged, pruned, failed) with
    plausible figures, drawn deterministically from its config and seed. ``gaming``: its checkpoint-choice figures
    are 0.99 (a degenerate model that an objective alone would crown: only its status may keep it from winning).

    Diverged trials stop in ``diverge_epoch`` (their evaluated epochs come before it; ``diverge_epoch=1``
    leaves no checkpoint), pruned trials stop after 2 epochs without a checkpoint, failed trials log nothing.
    """
    params = {**ExperimentConfig().flat(), **overrides, "train.seed": seed, "train.epochs": epochs}
    rng = random.Random(f"{config_key(params)}-{seed}")
    ends: dict[str, int] = {Status.DIVERGED: diverge_epoch - 1, Status.PRUNED: min(2, epochs), Status.FAILED: 0}
    done = ends.get(status, epochs)
    history = _curves(status, params, done, rng, gaming) if done else {}
    trial = SyntheticTrial(number=number, params=params, status=status, history=history)
    trial.tags = {**tracking.trial_tags(parent_run_id=None, study="", number=number, key=trial.config_key,
                                        seed=seed, phase=Phase(phase)),
                  contract.TAG_STATE: STATE_OF[status], contract.TAG_STATUS: status}
    if status == Status.FAILED:
        return trial
    if status == Status.DIVERGED:
        trial.tags.update({contract.TAG_DIVERGED_STEP: str(diverge_epoch * 77 - 5),
                           contract.TAG_DIVERGENCE_CAUSE: f"non-finite gradient in encoder at epoch {diverge_epoch}"})
    if history and status not in (Status.PRUNED,):
        scores = [b + g for b, g in zip(history["val/bleu4"], history["val/gaussian"])]
        best_index = max(range(done), key=scores.__getitem__)  # chosen on the checkpoint-choice figures
        trial.best = {best(k): history[k][best_index] for k in BEST_FIGURES if k in history}
        trial.best[BEST_EPOCH] = float(best_index + 1)
        trial.tags[contract.TAG_BEST_EPOCH] = str(best_index + 1)
    trial.final = {"run/diverged": float(status == Status.DIVERGED), "run/wall_time_s": 6.0 * max(done, 1),
                   "run/epochs_done": float(done)}
    if history:  # as studies.tracking does: a run that diverged in its first epoch has no grad-norm figure
        trial.final["run/grad_norm_max"] = max(history["train/grad_norm_max"])
    return trial


def write_study(*, tracking_uri: str, study: str, trials: list[SyntheticTrial], objective: str = "bleu4+gaussian",
                artifact_location: str | Path | None = None, parent: bool = True) -> dict[str, str | None]:
    """Log ``trials`` (and a parent run) to a new experiment named ``study``; sets each trial's ``run_id``."""
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(study, artifact_location=str(artifact_location) if artifact_location
                                             else None)
    parent_id = None
    if parent:
        run = client.create_run(experiment_id, run_name=study, tags=tracking.study_tags(
            study=study, objective=objective, rank_by="mean", spec_path=f"experiments/{study}.yaml",
            storage=f"mlruns/optuna/{study}.journal"))
        parent_id = run.info.run_id
    now = int(time.time() * 1000)
    for trial in trials:
        tags = {**trial.tags, contract.TAG_STUDY: study}
        if parent_id:
            tags[contract.TAG_PARENT] = parent_id
        run = client.create_run(experiment_id, run_name=f"trial-{trial.number}", tags=tags)
        trial.run_id = run.info.run_id
        metrics = [Metric(key, value, now, step + 1) for key, values in trial.history.items()
                   for step, value in enumerate(values)]
        metrics += [Metric(key, value, now, 0) for key, value in {**trial.best, **trial.final}.items()]
        params = [Param(key, str(value)) for key, value in trial.params.items()]
        for start in range(0, max(len(metrics), 1), 1000):
            client.log_batch(trial.run_id, metrics=metrics[start:start + 1000], params=params if not start else [])
        client.set_terminated(trial.run_id, "FAILED" if trial.status == Status.FAILED else "FINISHED")
    return {"experiment_id": experiment_id, "parent_run_id": parent_id}


DEMO_CONFIGS: tuple[tuple[dict[str, Any], tuple[str, ...]], ...] = (
    # (overrides, status of seed 0, 1, ...)
    ({"optim.name": "adam", "optim.lr": 0.003, "optim.clip_norm": 1.0, "kl.schedule": "cyclical",
      "kl.free_bits": 0.1, "model.latent_size": 32}, (Status.WORKS, Status.WORKS)),
    ({"optim.name": "adam", "optim.lr": 0.001, "optim.clip_norm": None, "kl.schedule": "cyclical",
      "model.latent_size": 16}, (Status.WORKS, Status.WEAK)),
    ({"optim.name": "sgd", "optim.lr": 0.5, "optim.clip_norm": None, "kl.schedule": "monotonic",
      "model.latent_size": 32}, (Status.DIVERGED, Status.DIVERGED)),
    ({"optim.name": "sgd", "optim.lr": 0.05, "optim.clip_norm": None, "kl.schedule": "cyclical",
      "model.latent_size": 32}, (Status.DIVERGED, Status.WORKS)),
    ({"optim.name": "adam", "optim.lr": 0.003, "optim.clip_norm": 1.0, "kl.schedule": "monotonic",
      "model.latent_size": 8}, (Status.COLLAPSED, Status.COLLAPSED)),
    ({"optim.name": "adam", "optim.lr": 0.003, "optim.clip_norm": 1.0, "kl.schedule": "constant",
      "kl.beta_max": 0.0, "model.latent_size": 32}, (Status.PRIOR_HOLE, Status.PRIOR_HOLE)),
    ({"optim.name": "adam", "optim.lr": 0.01, "optim.clip_norm": 5.0, "kl.schedule": "cyclical",
      "model.latent_size": 64}, (Status.PRUNED, Status.PRUNED)),
)


def demo_trials(*, epochs: int = 4) -> list[SyntheticTrial]:
    """Good, diverged (with and without a checkpoint), collapsed, prior-hole, pruned and one failed trial."""
    trials: list[SyntheticTrial] = []
    for overrides, statuses in DEMO_CONFIGS:
        for seed, status in enumerate(statuses):
            diverge_epoch = 1 if overrides["optim.lr"] >= 0.5 else 3
            trials.append(make_trial(number=len(trials), overrides=overrides, seed=seed, status=status,
                                     epochs=epochs, diverge_epoch=diverge_epoch))
    trials.append(make_trial(number=len(trials), overrides=DEMO_CONFIGS[0][0], seed=2, status=Status.FAILED,
                             epochs=epochs))  # a third seed of the first configuration that crashed
    # a collapsed configuration whose objective would win: BLEU-4 0.07, lab Gaussian 1.0, never first
    trials += [make_trial(number=len(trials) + seed, overrides=GAMING, seed=seed, status=Status.COLLAPSED,
                          epochs=epochs, gaming=True) for seed in (0, 1)]
    return trials


GAMING = {"optim.name": "adam", "optim.lr": 0.03, "optim.clip_norm": None, "kl.schedule": "constant",
          "kl.beta_max": 1.0, "model.latent_size": 8}
"""The configuration of our own ablation's crowned collapsed model (constant beta=1, latent 8, Adam 0.03)."""


def failures_only_trials(*, epochs: int = 4) -> list[SyntheticTrial]:
    """A study where nothing produced a checkpoint: pruned trials and trials diverged in epoch 1."""
    trials: list[SyntheticTrial] = []
    for seed in (0, 1):
        trials.append(make_trial(number=len(trials), overrides={"optim.name": "sgd", "optim.lr": 0.5,
                                 "optim.clip_norm": None}, seed=seed, status=Status.DIVERGED, epochs=epochs,
                                 diverge_epoch=1))
        trials.append(make_trial(number=len(trials), overrides={"optim.lr": 0.01}, seed=seed, status=Status.PRUNED,
                                 epochs=epochs))
    return trials


KL_BUNDLES: tuple[dict[str, Any], ...] = (
    {"kl.schedule": "constant", "kl.beta_max": 0.0},
    {"kl.schedule": "monotonic"},
    {"kl.schedule": "cyclical"},
    {"kl.schedule": "cyclical", "kl.free_bits": 0.1},
)


def scale_trials(n_trials: int, *, seeds: int = 2, epochs: int = 3) -> list[SyntheticTrial]:
    """``n_trials`` trials of a kl_ablation-like grid (KL bundle x latent x lr x optimizer x clip), ``seeds`` each."""
    grid = list(itertools.product(KL_BUNDLES, (8, 16, 32, 64), (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.5),
                                  ("sgd", "adam", "adamw"), (None, 1.0, 5.0)))
    random.Random(0).shuffle(grid)  # a prefix of the grid then covers every dimension
    trials: list[SyntheticTrial] = []
    for bundle, latent, lr, optimizer, clip in grid:
        overrides = {**bundle, "model.latent_size": latent, "optim.lr": lr, "optim.name": optimizer,
                     "optim.clip_norm": clip}
        explosive = lr >= (0.1 if optimizer == "sgd" else 0.03) and clip is None
        for seed in range(seeds):
            if len(trials) >= n_trials:
                return trials
            rng = random.Random(f"{config_key(overrides)}-{seed}")
            if explosive or rng.random() < 0.03:
                status = Status.DIVERGED
            elif bundle["kl.schedule"] == "constant":
                status = Status.PRIOR_HOLE
            elif bundle["kl.schedule"] == "monotonic" and latent <= 16:
                status = Status.COLLAPSED
            else:
                status = Status.PRUNED if rng.random() < 0.1 else Status.WORKS
            trials.append(make_trial(number=len(trials), overrides=overrides, seed=seed, status=status,
                                     epochs=epochs, diverge_epoch=rng.randint(1, epochs)))
    return trials
