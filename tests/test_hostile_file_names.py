"""A data file's name is the file's producer's choice: escape sequences and line breaks in it reach no terminal
raw and start no line of their own, in messages or in the YAML that scaffold and adapt write."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.conftest import run

HOSTILE = "ESS8FR\x1b[2J\x1b]0;pwned\x07\nok: fine.sav"
SHOWN = "ESS8FR\\x1b[2J\\x1b]0;pwned\\x07"


def _copy(ess8: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(ess8, folder / HOSTILE)
    return folder / HOSTILE


def _clean(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, output
    assert not any(line.startswith("ok: fine") for line in output.splitlines()), output


def test_build_inspect_and_adapt_print_the_name_escaped(ess8: Path, tmp_path: Path) -> None:
    path = _copy(ess8, tmp_path)
    code, out, err = run("build", "--data", str(path.parent), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0, err
    _clean(out + err)
    assert f"ess wave 8: 2,070 rows from {SHOWN}\\nok: fine.sav\n" in out
    code, out, err = run("inspect", str(path), "--match", "gndr")
    assert code == 0, err
    _clean(out + err)
    assert out.startswith(f"{path.parent}/{SHOWN}\\x0aok: fine.sav: sav, 2070 rows")
    code, out, err = run("adapt", str(path), "--like", "ess:8")
    _clean(out + err)
    assert f"{SHOWN}\\nok: fine.sav harmonises as it is with ess wave 8" in out + err


def test_scaffold_writes_the_name_into_one_comment_line(ess8: Path, tmp_path: Path) -> None:
    """The draft's header comment held the name as it is: its line break ended the comment, and 'ok: fine.sav
    (sav, …' became a key of the crosswalk."""
    path = _copy(ess8, tmp_path)
    draft = tmp_path / "draft.yaml"
    code, out, err = run("scaffold", str(path), "--survey", "ess", "--wave", "97", "--out", str(draft))
    assert code == 0, err
    _clean(out + err)
    text = draft.read_text()
    assert f"scaffolded by `harmonise scaffold` from {SHOWN} ok: fine.sav\n" in text
    assert "\x1b" not in text and "ok" not in yaml.safe_load(text)
