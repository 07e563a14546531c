"""The README's two commands are the ones CI and a newcomer run; the README stays short and its links resolve."""

import re

from tests.conftest import ROOT

README = ROOT / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def commands() -> list[str]:
    return re.findall(r"```bash\n(python3 -m venv .*)\n```", README.read_text())


def test_readme_opens_with_install_and_run_then_install_and_test():
    main_job, test = commands()[:2]
    assert "studies.run" in main_job
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test = commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


def test_readme_is_read_in_five_minutes():
    assert len(README.read_text().splitlines()) <= 160


def test_every_relative_link_in_the_readme_and_docs_resolves():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = target.split("#")[0]
            if path:
                assert (page.parent / path).exists(), f"{page.relative_to(ROOT)}: {target} does not exist"


def test_readme_has_a_where_to_change_what_table():
    text = README.read_text()
    assert "\n## Where to change what\n" in text
    section = text.split("\n## Where to change what\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert "|---|" in section and len(rows) >= 1 + 6, "a header and a row per kind of change"
