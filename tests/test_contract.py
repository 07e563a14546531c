"""The names of what a run reports and a study stores: defined once (cvae.names, studies.contract), written
exactly so by the library, and each one described in docs/tracking-contract.md."""

from __future__ import annotations

import re

from cvae import names
from cvae.trainer import TRACE_KEYS, fit
from studies import contract
from tests.conftest import DATA, ROOT, tiny_config

DOC = ROOT / "docs" / "tracking-contract.md"
NAMESPACES = ("train", "test", "heldout", "val", "latent", "best", "run", "trace")


def test_an_evaluated_epoch_reports_exactly_the_named_figures() -> None:
    records: list = []
    fit(tiny_config(train={"epochs": 1}), callbacks=[records.append])
    assert set(records[0].metrics) == set(names.EPOCH) - set(names.OPTIONAL)
    records.clear()
    fit(tiny_config(train={"epochs": 1}, data={"heldout": str(DATA / "heldout.txt")}), callbacks=[records.append])
    assert set(records[0].metrics) == set(names.EPOCH)


def test_every_name_is_in_its_namespace_and_a_chosen_checkpoint_copy_keeps_the_key() -> None:
    for key in names.EPOCH:
        assert key.split("/")[0] in ("train", "test", "heldout", "val", "latent"), key
    assert set(contract.TRIAL_FIGURES) <= set(contract.BEST_FIGURES) <= set(names.EPOCH)
    assert contract.best(names.TEST_BLEU) == "best/test/bleu4" == contract.BEST_TEST_BLEU
    assert len(set(contract.TRIAL_ATTRS)) == len(contract.TRIAL_ATTRS)


def test_the_document_names_every_key_and_no_other() -> None:
    text = DOC.read_text()
    pattern = rf"`((?:{'|'.join(NAMESPACES)})/[a-z_0-9/]+)`"
    documented = set(re.findall(pattern, text))
    expected = (set(names.EPOCH) | {contract.best(key) for key in contract.BEST_FIGURES} | {contract.BEST_EPOCH}
                | set(contract.RUN_FIGURES) | {contract.TRACE_PREFIX + key for key in TRACE_KEYS})
    assert documented == expected, (f"documented, not defined: {sorted(documented - expected)}; "
                                    f"defined, not documented: {sorted(expected - documented)}")
    for key, meaning in names.EPOCH.items():  # the document's table says what cvae.names says, word for word
        assert f"| `{key}` | {meaning} |" in text, key
    for attr in (*contract.TRIAL_ATTRS, contract.SPEC_DIGEST, contract.OBJECTIVE, contract.HEARTBEAT):
        assert f"`{attr}`" in text, attr
