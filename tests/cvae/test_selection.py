"""cvae.selection: the checkpoint is the best healthy evaluated epoch (a collapsed one only when no healthy epoch
exists), and the collapse detector stops a run only after its patience, past the KL warm-up."""

import pytest
import torch

from cvae.config import ModelConfig
from cvae.model import CVAE
from cvae.selection import CollapseDetector, Selection, selection_score
from cvae.trainer import EpochRecord
from tests.conftest import tiny_config

HEALTHY = {"latent/kl": 8.0, "latent/active_units": 6, "latent/logvar_absmax": 2.0, "test/bleu4": 0.5,
           "val/bleu4": 0.5, "val/gaussian": 0.2}
COLLAPSED = {**HEALTHY, "latent/kl": 0.01, "latent/active_units": 0}


def record(epoch: int, metrics: dict, **change: float) -> EpochRecord:
    return EpochRecord(epoch=epoch, step=10 * epoch, metrics={**metrics, **change})


@pytest.fixture(scope="module")
def model() -> CVAE:
    return CVAE(ModelConfig(hidden_size=16, embed_size=8, latent_size=4, cond_size=2))


def test_selection_score_reads_the_validation_figures_or_the_epoch():
    metrics = {**HEALTHY, "test/bleu4": 0.99}
    assert selection_score("bleu4+gaussian", metrics, 3) == pytest.approx(0.7)
    assert selection_score("bleu4", metrics, 3) == pytest.approx(0.5)
    assert selection_score("last", metrics, 3) == 3.0


def test_a_collapsed_epoch_loses_to_any_healthy_one_whatever_its_score(model):
    selection = Selection("bleu4+gaussian")
    selection.offer(record(1, COLLAPSED, **{"val/bleu4": 0.99, "val/gaussian": 0.99}), model, {})
    selection.offer(record(2, HEALTHY), model, {"test": []})
    selection.offer(record(3, HEALTHY, **{"val/bleu4": 0.1}), model, {})
    assert selection.chosen.epoch == 2 and selection.chosen.samples == {"test": []}
    assert selection.chosen.score == pytest.approx(0.7)


def test_a_collapsed_epoch_is_chosen_when_no_healthy_one_exists(model):
    selection = Selection("bleu4+gaussian")
    assert selection.chosen is None
    selection.offer(record(1, COLLAPSED, **{"val/bleu4": 0.3}), model, {})
    selection.offer(record(2, COLLAPSED, **{"val/bleu4": 0.2}), model, {})
    assert selection.chosen.epoch == 1


def test_the_chosen_weights_are_a_copy_kept_on_the_cpu(model):
    selection = Selection("last")
    selection.offer(record(1, COLLAPSED), model, {})  # `last` takes the last epoch, healthy or not
    first = next(iter(model.state_dict()))
    with torch.no_grad():
        model.state_dict()[first].add_(1.0)
    assert not torch.equal(selection.chosen.state[first], model.state_dict()[first])
    assert selection.chosen.state[first].device.type == "cpu"
    with torch.no_grad():
        model.state_dict()[first].sub_(1.0)


def test_the_detector_stops_after_patience_collapsed_epochs_past_the_warm_up():
    config = tiny_config(kl={"schedule": "monotonic", "ramp": 2, "unit": "epoch"},
                         train={"epochs": 10, "collapse_patience": 2})
    detector = CollapseDetector(config, steps_per_epoch=10)
    verdicts = [detector(record(epoch, COLLAPSED)) for epoch in range(1, 6)]
    assert verdicts == [None, None, None, "collapsed", "collapsed"]  # epochs 1-2 ramp the KL weight
    again = CollapseDetector(config, steps_per_epoch=10)
    assert [again(record(e, m)) for e, m in ((3, COLLAPSED), (4, HEALTHY), (5, COLLAPSED))] == [None] * 3


def test_the_detector_stops_an_overflowing_latent_at_once_and_never_without_patience():
    config = tiny_config(train={"collapse_patience": 1})
    unstable = record(1, HEALTHY, **{"latent/kl": 1e12})
    assert CollapseDetector(config, steps_per_epoch=10)(unstable) == "unstable"
    assert CollapseDetector(tiny_config(), steps_per_epoch=10)(unstable) is None
