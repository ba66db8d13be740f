"""The mapping author's loop stays light: a static `validate` and `--help` load no data libraries.

These check what is imported, not how long it takes (timings live in benchmarks/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["duckdb", "numpy", "pandas", "pandera", "pyreadstat", "jinja2"]

SCRIPT = """
import json, sys
from harmonise.cli import main
code = main({args}, standalone_mode=False)
print(json.dumps({{"code": code, "loaded": sorted(m for m in {heavy} if m in sys.modules)}}))
"""


def _python(script: str) -> str:
    """Standard output of ``script`` in a fresh interpreter (nothing imported yet)."""
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _loaded_after(args: list[str]) -> dict[str, object]:
    out = _python(SCRIPT.format(args=repr(args), heavy=repr(HEAVY)))
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_static_validate_loads_no_data_library() -> None:
    assert _loaded_after(["--project", str(ROOT), "validate"]) == {"code": None, "loaded": []}


def test_help_loads_no_data_library() -> None:
    assert _loaded_after(["--help"]) == {"code": 0, "loaded": []}


def test_public_functions_load_on_first_use() -> None:
    script = ("import sys, harmonise; before = 'duckdb' in sys.modules; f = harmonise.connect; "
              "print(before, 'duckdb' in sys.modules, f.__module__)")
    assert _python(script).split() == ["False", "True", "harmonise.store.connect"]
