"""What identifies a result: keys over parts, a file's bytes (sha256), and the running harmonise (its version and
source digest)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from harmonise import __version__

_DIGESTS: dict[str, str] = {}


def digest(parts: Iterable[object]) -> str:
    """A key: sha256 over the parts' text, each length-prefixed (so no two part lists collide)."""
    h = hashlib.sha256()
    for part in parts:
        data = str(part).encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def code_digest() -> str:
    """harmonise's version and the digest of its source files: what a build's cache is keyed by, and what a
    database records (``build_info.harmonise_code``) so that a query can tell its stored estimates are this
    code's."""
    if "code" not in _DIGESTS:
        package = Path(__file__).parent.parent
        _DIGESTS["code"] = digest([__version__, *((str(p.relative_to(package)), p.read_bytes())
                                                   for p in sorted(package.rglob("*.py")))])
    return _DIGESTS["code"]


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)  # releases the GIL: files hash in parallel threads
    return h.hexdigest()


def hash_files(paths: Sequence[Path], threads: int = 2) -> list[str]:
    """:func:`sha256_of` every file, ``threads`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(sha256_of, paths))
