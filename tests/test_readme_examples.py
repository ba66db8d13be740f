"""Every ```python block of README.md and docs/indicators.md runs against a freshly built database."""

from __future__ import annotations

import re
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
