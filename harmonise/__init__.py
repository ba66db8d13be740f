"""harmonise: post-harmonisation of migrant-integration survey microdata into one DuckDB file.

Public API::

    from harmonise import connect
    con = connect("harmonised.duckdb")      # read-only, no external access

    from harmonise import indicators, compare, export
    indicators("harmonised.duckdb", ["employment_rate"], by=["country"], group="birthplace")
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harmonise.reports.chart import compare
    from harmonise.reports.export import export
    from harmonise.reports.indicators import indicators
    from harmonise.store.connect import connect

__all__ = ["__version__", "compare", "connect", "export", "indicators"]

_LAZY = {"connect": "harmonise.store.connect", "indicators": "harmonise.reports.indicators",
         "export": "harmonise.reports.export", "compare": "harmonise.reports.chart"}


def __getattr__(name: str) -> Any:
    """Import the public functions on first use: `import harmonise` (and so every command) stays free of
    DuckDB and pandas until one is needed."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harmonise' has no attribute {name!r}")
