"""`pip install .`: only the library and the harness are installed, with the console entry points; nothing named
`data` or `benchmarks` lands in site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment

ENTRY_POINTS = {"cvae-train": "cvae.train:main", "cvae-study": "studies.run:main",
                "cvae-report": "studies.report.build:main", "cvae-best": "studies.best:main",
                "cvae-use": "studies.use:main", "cvae-ui": "studies.ui.browse:main"}


def test_the_wheel_ships_cvae_and_studies_with_their_entry_points(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("cvae_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"cvae", "studies"}
    entry = next(name for name in names if name.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    for script, target in ENTRY_POINTS.items():
        assert f"{script} = {target}" in text

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    target = next((venv / "lib").glob("python*")) / "site-packages"
    with zipfile.ZipFile(wheel) as archive:  # what pip install --no-deps puts in site-packages
        archive.extractall(target)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for module in ("data", "benchmarks"):
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {module}"], cwd=outside,
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "No module named" in probe.stderr
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import cvae, studies; print(cvae.__file__)"],
                           cwd=outside, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and found.stdout.startswith(str(target)), found.stderr
