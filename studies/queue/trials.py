"""A study's trials as (configuration, seed) items: opening the study, the params of a trial, which are done,
and how the study's configurations rank."""

from __future__ import annotations

import json
import math
from typing import Any, Literal, NamedTuple

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from cvae.errors import ConfigError
from cvae.names import VAL_BLEU, VAL_GAUSSIAN
from cvae.scoring import STATUSES, Status, objective_score, rank
from studies import contract
from studies.queue.settled import SettledPruner
from studies.spec import SEED_KEY, Spec


def make_sampler(spec: Spec, *, seed: int) -> optuna.samplers.BaseSampler:
    """TPE or random; for grid studies every trial is enqueued with all its params, so the sampler is idle."""
    if spec.settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner(name: str, *, epochs: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner `study.pruner` names, for trials of ``epochs`` epochs (one report per evaluated epoch)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "settled":
        return SettledPruner(epochs=epochs)
    return optuna.pruners.NopPruner()


def make_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    return pruner(spec.settings.pruner, epochs=spec.base.train.epochs)


def open_study(*, spec: Spec, storage: BaseStorage, label: str) -> optuna.Study:
    """Create the study, or load it and check it was made from the same spec (ConfigError if not)."""
    directions: list[Literal["maximize"]] = ["maximize"] * (2 if spec.settings.objective == "pareto" else 1)
    sampler, pruner = make_sampler(spec, seed=spec.settings.sampler_seed), make_pruner(spec)
    try:  # an existing study is loaded, not created again: a journal gets no record before the digest is checked
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        study = optuna.create_study(study_name=spec.name, storage=storage, directions=directions,
                                    load_if_exists=True, sampler=sampler, pruner=pruner)
    digest = study.user_attrs.get(contract.SPEC_DIGEST)
    if digest is None:
        study.set_user_attr(contract.SPEC_DIGEST, spec.digest)
        study.set_user_attr(contract.OBJECTIVE, spec.settings.objective)
    elif digest != spec.digest or len(study.directions) != len(directions):
        raise ConfigError(f"{spec.path}: study {spec.name!r} in {label} was made from a different experiment, "
                          "search space or study settings; pass --study-name NEW to start another")
    if isinstance(storage, RDBStorage):  # every process must agree on when a trial is dead
        beat = study.user_attrs.get(contract.HEARTBEAT)
        if beat is None:
            study.set_user_attr(contract.HEARTBEAT, spec.settings.heartbeat)
        elif beat != spec.settings.heartbeat:
            raise ConfigError(f"{spec.path}: key study.heartbeat: study {spec.name!r} in {label} runs with a "
                              f"heartbeat of {beat} s, not {spec.settings.heartbeat}; "
                              f"pass --set study.heartbeat={beat}")
    return study


def load_study(*, spec: Spec, storage: BaseStorage, sampler_seed: int | None = None) -> optuna.Study:
    seed = spec.settings.sampler_seed if sampler_seed is None else sampler_seed
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec, seed=seed),
                             pruner=make_pruner(spec))


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's params, including the fixed params of a trial still waiting in the queue."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def is_done(trial: FrozenTrial) -> bool:
    """Finished for good: COMPLETE, PRUNED (not as a duplicate draw), diverged or unstable."""
    status = trial.user_attrs.get(contract.STATUS)
    return (trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED and status != contract.DUPLICATE)
            or (trial.state == TrialState.FAIL and status in (Status.DIVERGED, Status.UNSTABLE)))


class Ranked(NamedTuple):
    """One configuration of a study, as ranked: whether it qualifies, its seeds' summary objective, its trials."""

    ok: bool
    score: float
    trials: list[FrozenTrial]


def ranked_configurations(*, trials: list[FrozenTrial], objective: str, rank_by: str = "mean") -> list[Ranked]:
    """The study's configurations as ``cvae.scoring.rank`` orders them, from the trials' status and
    checkpoint-choice figures (user attrs); crashed (`failed`) and unrun trials are left out."""
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in trials:
        status = trial.user_attrs.get(contract.STATUS)
        if trial.state.is_finished() and status in STATUSES and status != Status.FAILED:
            config = {k: v for k, v in trial_params(trial).items() if k != SEED_KEY}
            groups.setdefault(trial.user_attrs.get(contract.CONFIG_KEY, item_key(config)), []).append(trial)

    def seed(trial: FrozenTrial) -> tuple[str, float | None]:
        attrs = trial.user_attrs
        bleu, gaussian = contract.best(VAL_BLEU), contract.best(VAL_GAUSSIAN)
        value = objective_score(attrs[bleu], attrs[gaussian], objective=objective) if bleu in attrs else None
        return attrs[contract.STATUS], value

    return [Ranked(ok, score, groups[key]) for key, ok, score in rank({key: [seed(t) for t in members]
                                                                       for key, members in groups.items()},
                                                                      rank_by=rank_by)]


def to_confirm(ranked: list[Ranked], *, top: int, within: float | None) -> list[Ranked]:
    """The configurations a confirmation retrains: the first ``top`` that qualify, less those whose summary
    objective is more than ``within`` below the leader's (`study.confirm.within`; None keeps all ``top``)."""
    chosen = [item for item in ranked if item.ok][:top]
    if within is None or not chosen:
        return chosen
    line = chosen[0].score - within
    return chosen[:1] + [item for item in chosen[1:] if math.isfinite(item.score) and item.score >= line]


def suggest(trial: optuna.Trial, *, spec: Spec) -> dict[str, Any]:
    """Suggest every searched key and the seed (fixed params of an enqueued trial come back as they are)."""
    for dim in spec.space:
        if dim.kind == "choice":
            trial.suggest_categorical(dim.key, list(dim.choices))
        elif dim.kind == "int":
            trial.suggest_int(dim.key, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
        else:
            trial.suggest_float(dim.key, dim.low, dim.high, step=dim.step, log=dim.log)
    trial.suggest_categorical(SEED_KEY, list(spec.settings.seeds))
    return dict(trial.params)


def covered(trials: list[FrozenTrial]) -> set[str]:
    """The (configuration, seed) items waiting, running or done."""
    return {item_key(trial_params(t)) for t in trials
            if t.state in (TrialState.WAITING, TrialState.RUNNING) or is_done(t)}


def sampled_configs(trials: list[FrozenTrial], spec: Spec) -> list[dict[str, Any]]:
    """Distinct configurations (params without seed) of trials that have every searched key, in trial order."""
    keys = [dim.key for dim in spec.space]
    configs: list[dict[str, Any]] = []
    for trial in trials:
        params = trial_params(trial)
        config = {k: params[k] for k in keys if k in params}
        duplicate = trial.user_attrs.get(contract.STATUS) == contract.DUPLICATE
        if len(config) == len(keys) and not duplicate and config not in configs:
            configs.append(config)
    return configs


def item_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)
