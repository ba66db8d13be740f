"""The DuckDB store: atomic builds, provenance tables, read-only connections."""
