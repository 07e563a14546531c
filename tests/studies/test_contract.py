"""The names a study stores, defined once (studies.contract, built on cvae.names), and each one described in
docs/tracking-contract.md."""

from __future__ import annotations

import re

from cvae import names
from cvae.trainer import TRACE_KEYS
from studies import contract
from tests.conftest import ROOT

DOC = ROOT / "docs" / "tracking-contract.md"


NAMESPACES = ("train", "test", "heldout", "val", "latent", "best", "run", "trace")


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


def test_the_document_names_every_mlflow_tag_the_contract_defines() -> None:
    text = DOC.read_text()
    tags = [value for name, value in vars(contract).items() if name.startswith("TAG_")]
    assert len(tags) >= 20
    missing = [tag for tag in tags if f"`{tag}" not in text]
    assert not missing, f"tags not in docs/tracking-contract.md: {missing}"
