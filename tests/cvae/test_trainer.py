"""cvae.trainer: fit trains, reports every figure, diverges and stops as it says, and chooses its checkpoint."""

import math

import pytest
import torch

from cvae.trainer import fit
from tests.conftest import tiny_config

TIMINGS = {"train/words_per_s", "train/epoch_time_s"}


def test_short_run_lowers_the_loss_and_reports_every_figure():
    records = []
    result = fit(tiny_config(train={"epochs": 6}), callbacks=[records.append])
    assert result.status == "ok" and len(records) == 6
    assert records[-1].metrics["train/loss"] < records[0].metrics["train/loss"]
    for key in ("train/loss", "train/kl", "train/kl_weight", "train/grad_norm_mean", "train/grad_norm_max",
                "train/grad_norm_encoder_max", "train/grad_norm_decoder_max", "test/bleu4", "test/gaussian",
                "latent/active_units", "latent/kl", "latent/mutual_info"):
        assert key in records[-1].metrics, key
    assert len(records[-1].kl_per_dim) == 8
    assert result.best_epoch is not None and result.metrics == records[result.best_epoch - 1].metrics


def test_same_seed_same_figures_and_other_seed_differs():
    a = fit(tiny_config(train={"epochs": 2, "seed": 3}))
    b = fit(tiny_config(train={"epochs": 2, "seed": 3}))
    c = fit(tiny_config(train={"epochs": 2, "seed": 4}))
    def figures(result):  # everything but wall-clock timings
        return [{k: v for k, v in r.metrics.items() if k not in TIMINGS} for r in result.history]

    assert figures(a) == figures(b)
    assert a.history[-1].metrics["train/loss"] != c.history[-1].metrics["train/loss"]


def test_sgd_at_huge_lr_diverges_with_step_and_cause():
    result = fit(tiny_config(optim={"name": "sgd", "lr": 1e4, "clip_norm": None}, train={"epochs": 5}))
    assert result.status == "diverged"
    assert result.diverged_step is not None and result.diverged_step >= 1
    assert "non-finite" in result.divergence_cause
    assert result.grad_norm_max is not None and result.grad_norm_max > 0  # finite steps before divergence count
    assert result.epochs_done == len(result.history)
    for record in result.history:  # no NaN is reported as a figure
        assert all(torch.isfinite(torch.tensor(v)) for v in record.metrics.values())


def test_callback_can_stop_training():
    result = fit(tiny_config(train={"epochs": 5}), callbacks=[lambda record: record.epoch >= 2])
    assert result.status == "stopped" and len(result.history) == 2


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_teacher_forcing_decay_word_dropout_and_free_bits_train(rnn):
    cfg = tiny_config(model={"rnn": rnn, "word_dropout": 0.2, "latent_to_cell": True},
                      teacher_forcing={"schedule": "linear", "start": 1.0, "end": 0.5, "decay_epochs": 2},
                      kl={"schedule": "cyclical", "free_bits": 0.1}, train={"epochs": 2, "select": "last"})
    result = fit(cfg)
    assert result.status == "ok" and result.best_epoch == 2
    assert result.history[1].metrics["train/tf_ratio"] == pytest.approx(0.75)


def test_cross_tense_targets_are_the_same_verb_in_another_tense():
    from cvae.data import Data
    from cvae.trainer import Trainer
    cfg = tiny_config(train={"cross_tense": True})
    trainer = Trainer(cfg, Data.load(cfg))
    idx = torch.arange(len(trainer.data.words))
    targets = trainer.target_indices(idx)
    assert torch.equal(targets // 4, idx // 4)  # same row, i.e. same verb
    assert (targets != idx).any()  # and often another tense
    assert fit(cfg).status == "ok"


def test_checkpoint_is_chosen_on_validation_figures_not_the_reported_ones():
    from cvae.selection import selection_score
    result = fit(tiny_config(data={"val_pairs": 20}, train={"epochs": 4}))
    scores = [selection_score("bleu4+gaussian", r.metrics, r.epoch) for r in result.history]
    assert result.best_epoch == 1 + scores.index(max(scores))
    assert all("val/bleu4" in r.metrics and "test/bleu4" in r.metrics for r in result.history)
    no_val = fit(tiny_config(data={"val_pairs": 0}, train={"epochs": 1}))
    assert no_val.metrics["val/bleu4"] == no_val.metrics["test/bleu4"]


def test_a_diverged_run_keeps_its_trace_up_to_the_nonfinite_step_and_names_the_tensor():
    result = fit(tiny_config(optim={"name": "sgd", "lr": 1e4, "clip_norm": None}, train={"epochs": 5}))
    assert result.status == "diverged"
    steps = [int(point["step"]) for point in result.trace]
    assert steps == list(range(1, result.diverged_step + 1))  # from the start up to the non-finite step
    last = result.trace[-1]
    assert not all(math.isfinite(last[k]) for k in ("loss", "grad_norm") if k in last)
    assert result.nonfinite  # the first non-finite tensor (or the overflowing gradient) is named


def test_a_healthy_run_keeps_only_its_first_steps():
    from cvae.trainer import TRACE_HEAD
    result = fit(tiny_config(train={"epochs": 1}))
    assert 0 < len(result.trace) <= TRACE_HEAD and result.nonfinite is None
    keys = {"loss", "kl", "grad_norm", "grad_norm_encoder", "grad_norm_decoder", "logvar_absmax"}
    assert keys <= set(result.trace[0])


def test_collapse_detector_stops_a_collapsing_run_and_leaves_a_healthy_one_alone():
    # the full KL weight from step 0 on a tiny model collapses the posterior within a few epochs
    collapsing = fit(tiny_config(kl={"schedule": "constant", "beta_max": 1.0}, optim={"lr": 0.03},
                                 train={"epochs": 12, "collapse_patience": 2}))
    assert collapsing.status == "collapsed" and collapsing.stopped_epoch is not None
    assert collapsing.epochs_done == collapsing.stopped_epoch < 12
    kl = [r.metrics["latent/kl"] for r in collapsing.history[-2:]]
    au = [r.metrics["latent/active_units"] for r in collapsing.history[-2:]]
    assert all(k < 0.1 or a == 0 for k, a in zip(kl, au))
    # BN-VAE keeps every dimension's KL up: never collapses, so the detector never fires
    healthy = fit(tiny_config(kl={"schedule": "constant", "beta_max": 1.0}, model={"mu_bn": 0.7}, optim={"lr": 0.03},
                              train={"epochs": 6, "collapse_patience": 2}))
    assert healthy.status == "ok" and healthy.stopped_epoch is None and healthy.epochs_done == 6
    assert min(r.metrics["latent/kl"] for r in healthy.history) > 0.1


def test_checkpoint_choice_skips_collapsed_epochs_when_a_healthy_one_exists():
    from cvae.scoring import epoch_health
    result = fit(tiny_config(kl={"schedule": "monotonic", "beta_max": 1.0, "ramp": 3}, train={"epochs": 8}))
    health = [epoch_health(r.metrics) for r in result.history]
    assert "ok" in health and "collapsed" in health  # the situation the rule is for does occur
    assert epoch_health(result.metrics) == "ok"


def test_prior_fill_trains_the_decoder_on_prior_draws_toward_the_nearest_verb(monkeypatch):
    from cvae import trainer as train_module
    from cvae.data import decode_indices
    from cvae.data import Data
    from cvae.trainer import Trainer

    config = tiny_config(train={"prior_fill": 1.0})
    trainer = Trainer(config, Data.load(config))
    codes = trainer.codes()
    assert codes.shape == (len(trainer.data.words), config.model.latent_size) and not codes.requires_grad
    # draws placed exactly on codes 0 and 9 must be trained to spell verbs 0 and 2 (4 words a verb)
    monkeypatch.setattr(train_module.torch, "randn", lambda *a, **k: codes[[0, 9]].clone())
    seen = {}
    original = trainer.model.decoder.forward

    def spy(z, cond, targets, **kwargs):
        seen["targets"] = targets
        return original(z, cond, targets, **kwargs)

    monkeypatch.setattr(trainer.model.decoder, "forward", spy)
    loss = trainer.prior_fill_loss(codes, batch=2)
    assert loss.ndim == 0 and math.isfinite(loss.item()) and loss.item() > 0
    words = [decode_indices(row) for row in seen["targets"].tolist()]
    rows = trainer.data.rows
    assert words[0] in rows[0] and words[1] in rows[2]
    loss.backward()
    assert all(p.grad is None for p in trainer.model.encoder.parameters())  # the codes steer, they do not learn


def test_prior_fill_is_off_by_default_and_a_run_with_it_trains():
    assert tiny_config().train.prior_fill == 0.0
    result = fit(tiny_config(train={"epochs": 2, "prior_fill": 0.5}))
    assert result.status == "ok" and result.best_epoch is not None


def test_checkpoint_choice_draws_its_own_number_of_noise_vectors(monkeypatch):
    from cvae import evaluation as train_module

    drawn = []
    original = train_module.gaussian_generations
    monkeypatch.setattr(train_module, "gaussian_generations",
                        lambda generate, **kw: drawn.append(kw["n"]) or original(generate, **kw))
    fit(tiny_config(data={"val_pairs": 5}, train={"epochs": 1, "gaussian_samples": 7, "select_samples": 13}))
    assert drawn == [7, 13]  # the reported score's draws, then the checkpoint choice's
