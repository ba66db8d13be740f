"""Declarations loaded and modelled: schema, crosswalks, code tables, codebooks, descriptors (no SQL, no checks)."""
