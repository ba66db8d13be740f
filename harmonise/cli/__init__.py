"""The `harmonise` command line: click commands only, over the Python API (harmonise.api).

Commands live in one module per area so each has one owner: ``core`` (validate, build,
query, fixtures, sql). ``base`` holds the root group, error handling and output formatting.
"""

from __future__ import annotations

from harmonise.cli import analysis, authoring, codebook, core  # noqa: F401  (importing a module registers its commands)
from harmonise.cli.base import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    main()
