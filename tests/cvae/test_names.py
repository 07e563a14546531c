"""cvae.names: the figures an evaluated epoch reports, named once, each with what it measures."""

from __future__ import annotations

from cvae import names
from cvae.trainer import fit
from tests.conftest import DATA, tiny_config


def test_an_evaluated_epoch_reports_exactly_the_named_figures() -> None:
    records: list = []
    fit(tiny_config(train={"epochs": 1}), callbacks=[records.append])
    assert set(records[0].metrics) == set(names.EPOCH) - set(names.OPTIONAL)
    records.clear()
    fit(tiny_config(train={"epochs": 1}, data={"heldout": str(DATA / "heldout.txt")}), callbacks=[records.append])
    assert set(records[0].metrics) == set(names.EPOCH) - {names.VAL_UNSEEN_BLEU}
    records.clear()
    fit(tiny_config(train={"epochs": 1}, data={"heldout": str(DATA / "heldout.txt"), "val_verbs": 5}),
        callbacks=[records.append])
    assert set(records[0].metrics) == set(names.EPOCH)


def test_every_figure_says_what_it_measures_and_module_norms_are_named_alike() -> None:
    assert all(meaning.strip() for meaning in names.EPOCH.values())
    assert names.module_grad_norm("encoder", "max") == "train/grad_norm_encoder_max"
    for module in names.GRAD_MODULES:
        assert {names.module_grad_norm(module, "mean"), names.module_grad_norm(module, "max")} <= set(names.EPOCH)
    assert set(names.OPTIONAL) <= set(names.EPOCH)
