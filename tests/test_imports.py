"""The layers, as a checked table: which packages each layer may not import, measured by importing each module in a
fresh interpreter (so an import made by anything it imports counts too)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMANDS = {"studies.run", "studies.best", "studies.use", "studies.report.build", "studies.report.__main__",
            "studies.ui.browse", "cvae.train"}
"""The command-line modules: the only ones that may import studies.preflight."""

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # module (or package: every module in it) -> what it must never import, directly or through another module
    ("cvae", ("mlflow", "optuna", "studies")),
    ("cvae.trainer", ("cvae.train",)),
    ("studies.report", ("torch", "nltk", "studies.queue", "studies.worker")),
    ("studies.best", ("torch", "nltk", "studies.queue", "studies.worker")),
    ("studies.spec", ("torch", "mlflow", "optuna")),
    ("studies.queue", ("torch", "nltk", "mlflow", "studies.tracking", "studies.worker", "studies.report")),
    ("studies.tracking", ("torch", "optuna", "studies.queue")),
    ("studies.preflight", ("torch", "mlflow", "optuna")),
    ("studies.secrets", ("torch", "mlflow", "optuna")),
    ("studies.ui.display", ("torch", "studies.report.build", "studies.report.figures", "studies.report.document")),
    ("studies.ui.browse", ("torch", "nltk", "studies.queue", "studies.worker")),
]


def modules_of(package: str) -> list[str]:
    """``package`` itself and, for a package, every module in it."""
    path = ROOT / package.replace(".", "/")
    if not path.is_dir():
        return [package]
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in path.rglob("*.py") if p.name != "__main__.py")


def imported(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize(("module", "banned"), [(m, banned) for layer, banned in LAYERS for m in modules_of(layer)])
def test_layering(module, banned):
    found = sorted(name for name in imported(module) for ban in banned if name == ban or name.startswith(ban + "."))
    assert not found, f"{module} imports {found[:5]}"


def own_imports(path) -> set[str]:
    """The modules a file imports itself (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_preflight_is_imported_by_the_commands_only():
    importers = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                       for package in ("cvae", "studies") for p in (ROOT / package).rglob("*.py")
                       if "studies.preflight" in own_imports(p))
    assert importers and set(importers) <= COMMANDS, importers
