"""studies.best: the winning configuration and its best seed's run, as the report ranks them."""

from __future__ import annotations

import statistics

from studies import best
from studies.labels import fmt_value
from tests.studies.conftest import _by_config, _objective, _qualifies


def test_best_prints_the_configuration_and_its_best_seed_run(demo, capsys):
    assert best.main(["demo", "--tracking-uri", demo["uri"]]) == 0
    printed = capsys.readouterr().out
    groups = _by_config(demo["trials"])
    winner = max((ts for ts in groups.values() if all(t.best for t in ts) and _qualifies(ts)),
                 key=lambda ts: statistics.mean(_objective(t) for t in ts))
    top = max(winner, key=_objective)
    assert f"best configuration {top.config_key}:" in printed
    assert f"checkpoint: run {top.run_id} (seed {top.params['train.seed']}," in printed
    for key in ("optim.clip_norm", "optim.lr", "model.latent_size", "kl.schedule"):
        assert f"    {key} = {fmt_value(top.params[key])}\n" in printed
