"""cvae.resources: a configuration's allocations are estimated before any work, and one that cannot fit the machine
is refused in one line naming the key that makes it large."""

from __future__ import annotations

import pytest

from cvae.errors import ConfigError
from cvae.resources import check_resources, estimate, machine_memory
from tests.conftest import tiny_config

GB = 10**9


def test_the_estimate_grows_with_the_key_it_names():
    small, large = tiny_config(), tiny_config(train={"batch_size": 4096})
    by_key = {part.key: part.bytes for part in estimate(small)}
    assert set(by_key) == {"model.hidden_size", "train.batch_size", "train.select_samples", "data.val_pairs"}
    assert {p.key: p.bytes for p in estimate(large)}["train.batch_size"] > 200 * by_key["train.batch_size"]
    wide = tiny_config(model={"hidden_size": 1024})
    assert {p.key: p.bytes for p in estimate(wide)}["model.hidden_size"] > 100 * by_key["model.hidden_size"]


def test_the_project_recipe_fits_and_a_huge_batch_is_refused_naming_its_key():
    check_resources(tiny_config(), source="tiny.yaml", memory=2 * GB)
    with pytest.raises(ConfigError, match=r"^tiny.yaml: key train.batch_size: a training batch would take about "):
        check_resources(tiny_config(train={"batch_size": 1_000_000}, model={"hidden_size": 4096}),
                        source="tiny.yaml", memory=2 * GB)


@pytest.mark.parametrize(("sections", "key"), [
    ({"model": {"hidden_size": 8192, "embed_size": 8192}}, "model.hidden_size"),
    ({"train": {"select_samples": 1_000_000}, "model": {"hidden_size": 4096}}, "train.select_samples"),
    ({"train": {"gaussian_samples": 1_000_000, "select_samples": 10}, "model": {"hidden_size": 4096}},
     "train.gaussian_samples"),
    ({"data": {"val_pairs": 100_000}, "model": {"hidden_size": 8192, "embed_size": 16}}, "data.val_pairs"),
])
def test_each_large_part_names_its_own_key(sections, key):
    with pytest.raises(ConfigError, match=rf"key {key}: .* more than the 0.1 GB a run may use"):
        check_resources(tiny_config(**sections), source="x.yaml", memory=GB // 5)


def test_the_machine_memory_is_read_from_the_system():
    assert machine_memory() > GB // 4
