"""studies.report.analysis over real sqlite MLflow stores: seeds aggregated, a collapsed configuration never
ranked first, no winner said plainly, unstable figures kept out of means; the Pareto front."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from studies import best, report
from studies.report.analysis import pareto_mask
from studies.testing import make_trial, write_study
from tests.studies.conftest import _objective


def test_a_collapsed_configuration_with_lab_gaussian_one_never_ranks_first(demo):
    gaming = next(t for t in demo["trials"] if t.params["optim.lr"] == 0.03)
    assert gaming.best["best/test/gaussian"] == 1.0 and gaming.best["best/test/bleu4"] < 0.1
    assert _objective(gaming) > max(_objective(t) for t in demo["trials"] if t.best and t.status != "collapsed")
    configs = pd.read_csv(demo["out"] / "configs.csv")
    assert configs.iloc[0]["config_key"] != gaming.config_key
    row = configs.set_index("config_key").loc[gaming.config_key]
    assert not row["qualifies"]
    leaderboard = demo["md"].split("## Leaderboard")[1].split("##")[0]
    line = next(line for line in leaderboard.splitlines() if "collapsed 2" in line)
    assert line.startswith("| – |")  # listed without a rank
    findings = demo["md"].split("## Findings")[1].split("##")[0]
    assert "**Winner** (search only: not confirmed on fresh seeds)" in findings
    assert "lr 0.03" not in findings.split("**Winner**")[1]
    assert best.find_best(tracking_uri=demo["uri"], study="demo").config_key != gaming.config_key


def test_nothing_qualifies_is_said_plainly(tmp_path, capsys):
    from studies.testing import GAMING
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = [make_trial(number=s, overrides=GAMING, seed=s, status="collapsed", gaming=True) for s in (0, 1)]
    trials += [make_trial(number=2 + s, overrides={"optim.lr": 0.01}, seed=s, status=st)
               for s, st in enumerate(("prior_hole", "works"))]
    write_study(tracking_uri=uri, study="none", trials=trials)
    out = report.build_report(study="none", tracking_uri=uri, out=tmp_path / "report")
    findings = (out / "report.md").read_text().split("## Findings")[1].split("##")[0]
    assert "**Winner**: none. No configuration qualifies" in findings
    assert best.main(["none", "--tracking-uri", uri]) == 2
    assert "no winner: no configuration qualifies" in capsys.readouterr().err


def test_unstable_figures_never_reach_a_mean(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = {"optim.name": "sgd", "optim.lr": 0.3, "optim.clip_norm": None}
    trials = [make_trial(number=s, overrides=overrides, seed=s, status=st)
              for s, st in enumerate(("unstable", "works", "unstable"))]
    write_study(tracking_uri=uri, study="overflow", trials=trials)
    out = report.build_report(study="overflow", tracking_uri=uri, out=tmp_path / "report")
    configs = pd.read_csv(out / "configs.csv")
    assert configs.loc[0, "best/latent/kl mean"] == pytest.approx(trials[1].best["best/latent/kl"])  # the healthy seed alone
    assert configs.loc[0, "best/latent/kl count"] == 1 and not configs.loc[0, "qualifies"]
    assert "e+12" not in (out / "report.md").read_text() and "8000000000000" not in (out / "report.md").read_text()


def test_pareto_mask_keeps_non_dominated_points():
    points = pd.DataFrame({"x": [0.1, 0.3, 0.2, 0.3, math.nan], "y": [0.9, 0.5, 0.4, 0.6, 1.0]})
    assert pareto_mask(points, x="x", y="y").tolist() == [True, False, False, True, False]


def test_the_decoder_map_has_a_cell_per_kl_and_decoder_of_the_decoder_block_only():
    import pandas as pd

    from cvae.scoring import Status
    from studies import contract
    from studies.report.analysis import decoder_cells

    def trial(decoder, sd, blocks, status, heldout, tf=1.0):
        return {"phase": "search", "blocks": blocks, "model.decoder": decoder, "model.source_dropout": sd,
                "model.source_z": "posterior", "model.word_dropout": 0.0, "teacher_forcing.start": tf,
                "kl_group": "monotonic β=0.5",
                "finished": True, "status": status, Status.COLLAPSED: status == Status.COLLAPSED,
                Status.PRIOR_HOLE: status == Status.PRIOR_HOLE, "run_id": f"{decoder}{sd}{status}",
                contract.BEST_LATENT_ACTIVE_UNITS: 8.0, contract.BEST_LATENT_KL: 5.0,
                contract.BEST_LATENT_MUTUAL_INFO: 1.0, contract.BEST_TEST_GAUSSIAN: 0.4,
                contract.BEST_TEST_BLEU: 0.9, contract.BEST_HELDOUT_BLEU: heldout}

    frame = pd.DataFrame([trial("copy", 0.0, ["decoder"], Status.PRIOR_HOLE, 0.9),
                          trial("copy", 0.0, ["decoder"], Status.WORKS, 0.92),
                          trial("lab", 0.5, ["decoder"], Status.WORKS, 0.24),
                          trial("copy", 0.5, ["collapse"], Status.COLLAPSED, 0.5)])
    from studies.labels import decoder_labels
    frame["decoder"] = decoder_labels(frame)
    frame["kl_group"] = pd.Categorical(frame["kl_group"])
    cells = decoder_cells(frame).set_index("decoder")
    assert set(cells.index) == {"lab", "copy z-only 0"}  # the collapse block's trial is not on this map
    assert cells.loc["copy z-only 0", "n"] == 2 and cells.loc["copy z-only 0", Status.PRIOR_HOLE] == 1
    assert abs(cells.loc["copy z-only 0", "heldout_mean"] - 0.91) < 1e-9
    lab_only = frame.assign(**{"model.decoder": "lab"}, decoder=pd.Categorical(["lab"] * 4))
    assert decoder_cells(lab_only.assign(blocks=[[]] * 4)).empty  # nothing varies the decoder: no map
    assert set(decoder_cells(frame.assign(blocks=[[]] * 4))["decoder"]) == {"lab", "copy z-only 0", "copy z-only 0.5"}
    # teacher forcing is a decoder-strength factor: a lab decoder fed its own outputs half the time is its own cell
    forced = pd.concat([frame, pd.DataFrame([trial("lab", 0.5, ["decoder"], Status.WORKS, 0.2, tf=0.5)])],
                       ignore_index=True)
    forced["decoder"] = decoder_labels(forced)
    forced["kl_group"] = pd.Categorical(forced["kl_group"])
    cells = decoder_cells(forced)
    assert list(cells["decoder"].cat.categories) == ["lab", "lab · tf 0.5", "copy z-only 0"]
    assert cells.set_index("decoder").loc["lab · tf 0.5", "heldout_mean"] == 0.2


def test_a_confirmation_at_more_epochs_is_said_and_joined_to_its_search_figures(tmp_path):
    """study.confirm.set: the confirmation's runs train 8 epochs where the search trained 4; the report says so and
    shows the winner's search figures beside its confirmed ones (joined by `cvae.searched_key`)."""
    from studies import contract

    lab = {"optim.lr": 0.01}
    search = [make_trial(number=n, overrides=lab | {"model.latent_size": size}, seed=seed, status="works")
              for n, (size, seed) in enumerate([(8, 0), (8, 1), (16, 0), (16, 1)])]
    confirm = [make_trial(number=n, overrides=lab | {"model.latent_size": 8}, seed=seed, status="works", epochs=8,
                          phase="confirm") for n, seed in enumerate([100, 101])]
    for trial in confirm:
        trial.tags[contract.TAG_SEARCHED_KEY] = search[0].config_key
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_study(tracking_uri=uri, study="fidelity", trials=search + confirm, artifact_location=tmp_path / "art")
    md = (report.build_report(study="fidelity", tracking_uri=uri, out=tmp_path / "report") / "report.md").read_text()
    confirmation = md.split("## Confirmation on fresh seeds")[1].split("##")[0]
    assert "Trained with `train.epochs` 8 (the search: 4; study.confirm.set)." in confirmation
    findings = md.split("## Findings")[1].split("##")[0]
    assert "**Winner** (confirmed on fresh seeds)" in findings and ". In the search: BLEU-4" in findings
