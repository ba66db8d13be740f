"""Every ```python block of README.md and docs/indicators.md runs against a freshly built database, and
docs/authoring.md's codebook refresh (`harmonise declare`) in a copy of the project."""

from __future__ import annotations

import glob
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCUMENTS = ["README.md", "docs/indicators.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(doc: str) -> list[str]:
    return BLOCK.findall((ROOT / doc).read_text(encoding="utf-8"))


def test_block_extraction() -> None:
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\nz = 3\n```\n"
    assert BLOCK.findall(text) == ["x = 1\n", "y = 2\nz = 3\n"]
    assert python_blocks("README.md"), "README.md has no python example"


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_python_examples_run(doc: str, fr_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of one document run in order, sharing names, with `harmonised.duckdb` in the working folder."""
    shutil.copy(fr_db, tmp_path / "harmonised.duckdb")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    blocks = python_blocks(doc)
    assert blocks, f"{doc} has no python example"
    for i, code in enumerate(blocks, 1):
        exec(compile(code, f"{doc} python block {i}", "exec"), namespace)  # noqa: S102 - our own documentation


def test_authoring_declare_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/authoring.md's codebook refresh (`harmonise declare … --write`), run as written in a copy of the project
    beside ../shared: it rewrites the round-9 declared codebook from the Nordic country files, and the project
    still validates, against the files too."""
    from tests.conftest import run

    nordic = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic"
    if not nordic.is_dir():
        pytest.skip(f"no real ESS files at {nordic}")
    project = tmp_path / "project"
    project.mkdir()
    for folder in ("mappings", "surveys"):
        shutil.copytree(ROOT / folder, project / folder)
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    monkeypatch.chdir(project)
    text = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    section = text[text.index("## Declared codebooks from real files"):]
    line = next(ln for ln in section.splitlines() if ln.startswith("harmonise declare") and " --write" in ln)
    args = [a for arg in shlex.split(line.split(" # ")[0])[1:] for a in (sorted(glob.glob(arg)) if "*" in arg else [arg])]
    before = (project / "surveys" / "ess" / "codebook_9.yaml").read_text(encoding="utf-8")
    code, out, err = run(*args, project=project)
    assert (code, out) == (0, ""), err
    after = (project / "surveys" / "ess" / "codebook_9.yaml").read_text(encoding="utf-8")
    assert after != before and "Seen in ESS9FI.sav, ESS9NO.sav, ESS9SE.sav." in after
    assert run("validate", project=project)[0] == 0
    assert run("validate", "--data", str(nordic), project=project)[0] == 0


def test_the_readme_sql_gives_the_indicators_total(fr_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's first example computes the employment rate by hand, one survey-wave and country at a time: the
    same shares as `indicators` (its total rows). It mixed every survey and wave in one share before, which
    docs/indicators.md tells researchers never to do."""
    from harmonise import indicators

    shutil.copy(fr_db, tmp_path / "harmonised.duckdb")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(python_blocks("README.md")[0], "README.md python block 1", "exec"), namespace)  # noqa: S102
    by_hand = {(s, w, c): round(float(v), 12) for s, w, c, v in namespace["rows"]}  # type: ignore[attr-defined]
    total = {(r["survey"], r["wave"], r["country"]): round(float(r["estimate"]), 12)  # type: ignore[arg-type]
             for r in indicators(tmp_path / "harmonised.duckdb", ["employment_rate"]).records()
             if r["breakdown"] == "total" and r["country"] != "all"}
    assert by_hand == total and len(total) >= 1
