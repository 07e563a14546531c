"""The tree is the architecture diagram: the tests mirror the packages (one test file per module, at the mirrored
path), `ls studies` stays short enough to read at a glance, and no module grows past the line limit."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("cvae", "studies")
NOT_MODULES = ("__init__.py", "__main__.py")
"""Files that need no test file of their own (a package's exports, a `python -m` entry point)."""
MAX_STUDIES_ENTRIES = 15
MAX_MODULE_LINES = 360


def modules() -> list[Path]:
    """Every module of the packages, relative to the project root (``studies/queue/locks.py``)."""
    return sorted(path.relative_to(ROOT) for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if path.name not in NOT_MODULES and "__pycache__" not in path.parts)


def mirror(module: Path) -> Path:
    """Where the tests of ``module`` live: ``studies/queue/locks.py`` -> ``tests/studies/queue/test_locks.py``."""
    return Path("tests") / module.parent / f"test_{module.name}"


def test_every_module_has_its_test_file_at_the_mirrored_path() -> None:
    missing = [f"{module} -> {mirror(module)}" for module in modules() if not (ROOT / mirror(module)).is_file()]
    assert not missing, "modules without their test file:\n" + "\n".join(missing)


def test_every_mirrored_test_file_tests_a_module_that_exists() -> None:
    expected = {mirror(module) for module in modules()}
    found = {path.relative_to(ROOT) for package in PACKAGES for path in (ROOT / "tests" / package).rglob("test_*.py")}
    orphans = sorted(str(path) for path in found - expected)
    assert not orphans, "test files whose module is gone (move their tests with the code):\n" + "\n".join(orphans)


def test_ls_studies_reads_at_a_glance() -> None:
    entries = sorted(path.name for path in (ROOT / "studies").iterdir()  # as `ls` shows them: no hidden entries
                     if path.name != "__pycache__" and not path.name.startswith("."))
    assert len(entries) <= MAX_STUDIES_ENTRIES, f"`ls studies` shows {len(entries)} entries: {entries}"


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {module: len((ROOT / module).read_text().splitlines()) for module in modules()}
    too_long = [f"{module}: {n} lines" for module, n in sorted(lengths.items()) if n > MAX_MODULE_LINES]
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)
