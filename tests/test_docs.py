"""Every CLI command is shown in the README's tour and has help text (docs stay in step with the CLI)."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from harmonise.cli import main

COMMANDS = sorted(main.commands)


def test_the_cli_has_the_documented_command_set() -> None:
    assert COMMANDS == ["adapt", "build", "codebook", "compare", "coverage", "diff", "export", "fixtures", "indicators",
                        "inspect", "query", "scaffold", "schema", "sql", "validate"]


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_readme_tour_and_has_help(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"^harmonise {name}\b", readme, re.MULTILINE), f"README's tour does not show `harmonise {name}`"
    assert (main.commands[name].help or "").strip(), f"`harmonise {name}` has no help text"


def test_readme_opens_with_exactly_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[2:6] == [
        "```bash",
        "python3 -m venv .venv && .venv/bin/pip install -q --no-compile -e . && .venv/bin/harmonise build --demo --db harmonised.duckdb",
        'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m pytest -q -n auto',
        "```",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == lines[4], ".ci/run must run the README's test command"
