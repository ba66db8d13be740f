"""harmonise: post-harmonisation of migrant-integration survey microdata into one DuckDB file.

Public API::

    from harmonise import connect
    con = connect("harmonised.duckdb")      # read-only, no external access
"""

from __future__ import annotations

__version__ = "0.1.0"

from harmonise.store.connect import connect  # noqa: E402

__all__ = ["__version__", "connect"]
