"""A cache of parsed YAML documents, so an unchanged declaration is not parsed again on every run.

Entries live in ``$HARMONISE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/harmonise/yaml``, else
``~/.cache/harmonise/yaml``; ``off`` disables the cache), one file per document, named by the
SHA-256 of harmonise's version, the loader's rules (``LOADER``), the document's display name and its bytes, so an edited file is a
new key and is parsed afresh. An entry holds only plain data (dicts, lists, tuples, strings,
numbers, booleans, None, dates): it is read with an unpickler that refuses every other class, so a
tampered entry cannot run code; an unreadable or malformed entry is ignored and the file parsed.
Writes go to a temporary file renamed into place; a cache that cannot be written is skipped.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

from harmonise import __version__

# The loader's rules (what it refuses): a change to them is a new key, so no entry parsed under older rules
# (before zero-padded and other non-decimal number forms were refused) is taken for a clean parse.
LOADER = 2
_ALLOWED = {("datetime", "date"), ("datetime", "datetime")}


def folder() -> Path | None:
    """The cache folder, or None when disabled (``HARMONISE_CACHE_DIR=off``)."""
    env = os.environ.get("HARMONISE_CACHE_DIR")
    if env:
        return None if env == "off" else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harmonise" / "yaml"


def key(raw: bytes, name: str) -> str:
    """The entry name of a document: its bytes and display name, under this version of harmonise."""
    h = hashlib.sha256(f"{__version__}\0{LOADER}\0{name}\0".encode())
    h.update(raw)
    return h.hexdigest()


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return getattr(datetime, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def get(entry: str) -> Any | None:
    """The cached value of ``entry``, or None (absent, disabled, unreadable or not plain data)."""
    where = folder()
    if where is None:
        return None
    try:
        raw = (where / entry).read_bytes()
        return _PlainUnpickler(io.BytesIO(raw)).load()
    except Exception:  # noqa: BLE001 - any damage to an entry means: parse the file instead
        return None


def put(entry: str, value: Any) -> None:
    """Store ``value`` (plain data) under ``entry``; silently skipped when the folder cannot be written."""
    where = folder()
    if where is None:
        return
    tmp = where / f".{entry}.{os.getpid()}.tmp"
    try:
        where.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, where / entry)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
