"""Crosswalk plans → DuckDB SQL (vectorised, inspectable, engine-portable)."""
