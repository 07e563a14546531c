"""The layers: `cvae` knows nothing of MLflow or Optuna, and the modules that only read a study (the report,
`studies.best`, the study queue) do not import torch or nltk (each import costs seconds)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def imported(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["studies.report", "studies.best", "studies.study", "studies.results",
                                    "studies.secrets"])
def test_readers_do_not_import_torch(module):
    modules = imported(module)
    assert "torch" not in modules and "nltk" not in modules


@pytest.mark.parametrize("module", ["cvae.trainer", "cvae.scoring", "cvae.config"])
def test_the_library_does_not_import_mlflow_or_optuna(module):
    modules = imported(module)
    assert "mlflow" not in modules and "optuna" not in modules


def test_the_training_library_does_not_import_its_command_line():
    """`python -m cvae.train` runs the command-line module once: the library it calls never imports it back."""
    assert "cvae.train" not in imported("cvae.trainer")
