"""studies.spec.blocks: blocked designs (small grids of their own), the shipped ablation's blocks, their errors."""

from __future__ import annotations

from pathlib import Path

from cvae.configfile import load_config
from studies.spec import load_spec
from tests.studies.spec.conftest import BASE, error_of, write


def test_kl_ablation_spec_has_the_required_blocks() -> None:
    spec = load_spec("kl_ablation.yaml")
    assert [d.key for d in spec.space] == ["blocks"]
    sets = spec.space[0].sets
    explosion = [s for s, label in zip(sets, spec.space[0].choices) if label.split(":")[0] == "explosion"]
    collapse = [s for s, label in zip(sets, spec.space[0].choices) if label.split(":")[0] == "collapse"]
    # explosion: optimizer x learning rate x clip norm, with plain SGD at a high lr without clipping
    assert {s["optim.name"] for s in explosion} == {"sgd", "adam"}
    assert {s["optim.clip_norm"] for s in explosion} == {None, 1.0}
    assert any(s["optim.name"] == "sgd" and s["optim.lr"] >= 1.0 and s["optim.clip_norm"] is None
               for s in explosion)
    assert len({s["optim.lr"] for s in explosion if s["optim.name"] == "adam"}) >= 2
    # collapse: KL schedule x latent size, with no KL term (prior hole) and the full weight from step 0
    configs = [spec.config_for({"blocks": label, "train.seed": 0}) for label in spec.space[0].choices]
    kls = {(c.kl.schedule, c.kl.beta_max) for c in configs}
    assert {("constant", 0.0), ("constant", 1.0)} <= kls and {"monotonic", "cyclical"} <= {k for k, _ in kls}
    assert len({c.model.latent_size for c in configs}) >= 2 and collapse
    # the shared base is trained once and belongs to both blocks
    assert sum("collapse+explosion" in label for label in spec.space[0].choices) == 1
    assert spec.base.train.collapse_patience == 3 and spec.settings.confirm.top == 3
    assert not set(spec.settings.confirm.seeds) & set(spec.settings.seeds)
    # the decoder's side: the lab's decoder with word dropout, a copying decoder that bypasses z (no word decoded
    # from z alone) and one that keeps a z-only path, under two KL settings; withheld verbs choose the checkpoint
    decoders = {(c.model.decoder, c.model.source_dropout if c.model.decoder != "lab" else c.model.word_dropout,
                 c.kl.schedule) for c in configs}
    assert {("lab", 0.5, "monotonic"), ("copy", 0.0, "monotonic"), ("copy", 0.75, "monotonic"),
            ("copy", 0.0, "constant")} <= decoders
    assert {c.teacher_forcing.start for c in configs if c.model.decoder == "lab"} == {1.0, 0.5}
    # and the same z-only path with noise decoded through its lemma, beside the one decoded directly
    assert {c.model.sampling for c in configs if (c.model.decoder, c.model.source_dropout) == ("copy", 0.75)} == {
        "direct", "lemma"}
    # the copying decoder at the width of the recipe for unseen verbs (the study's time budget)
    assert {c.model.hidden_size for c in configs if c.model.decoder == "copy"} == {
        load_config("unseen.yaml").model.hidden_size}
    # the search screens at fewer epochs than the confirmation trains (study.confirm.set)
    assert spec.settings.confirm.assignments() == {"train.epochs": 30} and spec.base.train.epochs < 30
    assert spec.base.data.val_verbs > 0 and spec.settings.pruner == "settled"


def test_blocks_spec_errors_name_the_key(tmp_path: Path) -> None:
    assert "key blocks[1].search.settng: unknown config key" in error_of(write(tmp_path, "b.yaml", BASE + (
        "blocks:\n  - {name: a, search: {optim.lr: {choices: [0.01, 0.1]}}}\n"
        "  - {name: b, search: {settng: {choices: [{kl.beta_max: 1.0}]}}}\nstudy: {name: b}\n")))
    assert "key blocks[0].search.setting.choices[0]: unknown config key 'kl.beta'" in error_of(write(
        tmp_path, "c.yaml", BASE + "blocks:\n  - {name: a, search: {setting: {choices: [{kl.beta: 1.0}]}}}\n"
        "study: {name: c}\n"))
    assert "blocks are grids; use sampler: grid" in error_of(write(tmp_path, "d.yaml", BASE + (
        "blocks:\n  - {name: a, search: {optim.lr: {choices: [0.01, 0.1]}}}\n"
        "study: {name: d, sampler: tpe, trials: 2}\n")))
    assert "must be seeds the search never used" in error_of(write(tmp_path, "e.yaml", BASE + (
        "study: {name: e, seeds: [0, 1], confirm: {seeds: [1, 2]}}\n")))


def test_a_trial_belongs_to_the_blocks_its_configuration_was_drawn_from() -> None:
    spec = load_spec("kl_ablation.yaml")
    shared = next(label for label in spec.space[0].choices if label.startswith("decoder+collapse+explosion"))
    assert spec.blocks_of({"blocks": shared, "train.seed": 0}) == ("decoder", "collapse", "explosion")
    assert all(spec.blocks_of({"blocks": label}) for label in spec.space[0].choices)
    assert load_spec("smoke.yaml").blocks_of({"kl": load_spec("smoke.yaml").space[0].choices[0]}) == ()
