"""The README's two commands are the ones CI and a newcomer run."""

import re

from tests.conftest import ROOT


def commands() -> list[str]:
    return re.findall(r"```bash\n(python3 -m venv .*)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_install_and_run_then_install_and_test():
    main_job, test = commands()[:2]
    assert "studies.run" in main_job
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test = commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines
