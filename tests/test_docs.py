"""Every CLI command is shown in the README's tour and has help text, every option the docs give a command exists and
every option is documented, every table a build writes is named in the README (docs stay in step with the CLI)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from conftest import ROOT

from harmonise.cli import main

COMMANDS = sorted(main.commands)


def test_the_cli_has_the_documented_command_set() -> None:
    assert COMMANDS == ["adapt", "build", "codebook", "compare", "coverage", "declare", "diff", "export", "fixtures",
                        "indicators", "inspect", "query", "scaffold", "schema", "sql", "validate"]


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


USER_DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")
                                  if p.name not in ("decisions.md", "testing.md"))]  # what a user reads
OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][a-z0-9-]*)")


def spellings(params: list) -> set[str]:  # type: ignore[type-arg]
    return {o for p in params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def command_uses(text: str) -> list[tuple[int, str, str]]:
    """(line, command, its arguments) of every `harmonise CMD …` in a code block line or a code span (spans may
    wrap lines), and of every code span that starts with a command name (`build --design FILE`)."""
    found = []
    for block in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        first = text[:block.start()].count("\n") + 2
        for i, line in enumerate(block.group(1).splitlines()):
            for use in re.finditer(r"\bharmonise(?: --debug| --project \S+)* ([a-z]+)((?:(?!&&|\||;|\bharmonise ).)*)",
                                   line.split(" # ")[0]):
                found.append((first + i, use.group(1), use.group(2)))
    for span in re.finditer(r"`(?:harmonise )?([a-z]+)( [^`]*)?`", text):
        if span.group(1) in main.commands:
            found.append((text[:span.start()].count("\n") + 1, span.group(1), " ".join((span.group(2) or "").split())))
    return found


@pytest.mark.parametrize("doc", USER_DOCS)
def test_every_option_the_docs_give_a_command_exists(doc: str) -> None:
    """A user follows the docs literally: `harmonise build --data DIR --encodng latin1` would be click's usage
    error. Every option written after a command in README.md and docs/*.md is one of that command's."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    uses = command_uses(text)
    unknown = [f"{doc}:{line}: harmonise {cmd} {opt}" for line, cmd, args in uses if cmd in main.commands
               for opt in OPTION.findall(args) if opt not in spellings(main.commands[cmd].params)]
    assert unknown == []
    if doc in ("README.md", "docs/authoring.md", "docs/indicators.md"):
        assert len(uses) >= 10, "the extraction of commands found too few: check command_uses"


def test_every_option_of_every_command_is_documented() -> None:
    """What `--help` offers, some user doc says (README.md or docs/*.md, not the decision log)."""
    text = "\n".join((ROOT / doc).read_text(encoding="utf-8") for doc in USER_DOCS)
    named = set(OPTION.findall(text))
    missing = sorted(f"harmonise {name} {'/'.join(sorted(p.opts))}" for name, cmd in main.commands.items()
                     for p in cmd.params if isinstance(p, click.Option) and not spellings([p]) - {"--help"} & named)
    missing += sorted(f"harmonise {'/'.join(p.opts)}" for p in main.params
                      if isinstance(p, click.Option) and not set(p.opts) & named)
    assert missing == []


def test_command_uses_finds_options_in_blocks_and_spans() -> None:
    text = ("```bash\nharmonise build --data x --db y   # --full: none\nharmonise --debug query -f q.sql && ls -l\n```\n"
            "and `validate --data\nDIR` or `harmonise adapt F --like ess:9`, not `ls --all`.\n")
    assert command_uses(text) == [(2, "build", " --data x --db y  "), (3, "query", " -f q.sql "),
                                  (5, "validate", "--data DIR"), (6, "adapt", "F --like ess:9")]


def test_every_table_of_a_built_database_is_named_in_the_readme(fr_db: Path) -> None:
    """README's 'The database' says what each table holds; a table a build writes that it does not name is
    one a researcher never learns of (source_editions and survey_sampling were)."""
    from harmonise import connect

    con = connect(str(fr_db))
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    finally:
        con.close()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The database"):readme.index("## Citing")]
    assert len(tables) >= 20 and [t for t in tables if f"`{t}`" not in section] == []


def test_every_file_and_test_the_docs_name_exists() -> None:
    """`harmonise/spec/check.py` (gone into harmonise/checks/) sent a reader to a file that does not exist."""
    gone = []
    for doc in ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md") if p.name != "decisions.md")]:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for m in re.finditer(r"`((?:harmonise|tests|benchmarks|examples|mappings|surveys|schemas)/[\w./-]+)"
                             r"(?:::(\w+\*?))?`", text):
            path, test = ROOT / m.group(1), m.group(2)
            where = f"{doc}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}"
            pattern = "^def " + (test[:-1] if test and test.endswith("*") else f"{test}" + r"\(")
            if not path.exists() or test and not re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE):
                gone.append(where)
    assert gone == []


def test_every_environment_variable_harmonise_reads_is_in_the_readme() -> None:
    """HARMONISE_SERVER_DIR (where the validation server's socket lives) was read but documented nowhere."""
    read = set()
    for path in (ROOT / "harmonise").rglob("*.py"):
        read |= set(re.findall(r"environ(?:\.get)?[(\[]\s*\"(HARMONISE_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert read >= {"HARMONISE_SERVER", "HARMONISE_CACHE_DIR"}
    assert sorted(v for v in read if v not in readme) == []


def test_expressions_md_lists_exactly_the_functions_the_language_allows() -> None:
    from harmonise.spec.expr import FUNCTIONS

    text = (ROOT / "docs" / "expressions.md").read_text(encoding="utf-8")
    allowed = text[text.index("Allowed:"):text.index("Everything else")]
    assert set(re.findall(r"`([a-z_]+)[`(]", allowed)) == set(FUNCTIONS)
