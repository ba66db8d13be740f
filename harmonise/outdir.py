"""Output folders that never lose a user's file: harmonise replaces or removes only what it wrote there.

Every command that writes files into a folder (``codebook``, ``export``, ``fixtures``) goes through
:class:`OutputFolder`:

- the folder keeps a manifest, ``.harmonise-manifest``, of the paths harmonise wrote into it (a
  path ending in ``/`` is a whole tree, such as a partitioned Parquet export); only those are ever
  replaced or removed;
- an existing path that is not in the manifest (a *foreign* file) stops the command before
  anything is written (:class:`~harmonise.errors.UsageError`, exit 2) unless ``force``;
- symbolic links are never followed: a link at a target or at a folder above it inside the output
  folder is refused like a foreign file, and with ``force`` the link itself is replaced;
- every file is written to ``.harmonise-tmp/`` in the folder and renamed over its target, so a
  failed or killed command leaves the previous file or none, never part of one; the paths are
  claimed in the manifest before anything is written, so the next run may replace them.

Folders are created by the helper and never removed. Two commands writing into one folder at
the same moment are not coordinated.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self

from harmonise.errors import UsageError

MANIFEST = ".harmonise-manifest"
SCRATCH = ".harmonise-tmp"
_HEADER = "# paths harmonise wrote into this folder: it replaces or removes only these\n"
_SHOWN = 3  # conflicting paths named in the message


def _valid(rel: str) -> bool:
    p = PurePosixPath(rel.rstrip("/"))
    return bool(rel.rstrip("/")) and not p.is_absolute() and ".." not in p.parts and "." not in p.parts


class OutputFolder:
    """One output folder of one command run; see the module docstring for the guarantees."""

    def __init__(self, root: Path, *, force: bool = False, option: str = "--out") -> None:
        self.root = Path(root)
        self.force = force
        self.option = option
        if self.root.is_symlink() and not self.root.exists():
            raise UsageError(f"{self.root}: is a dangling symbolic link; pass an existing folder or a new path as "
                             f"{option}")
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"{self.root}: exists and is not a folder; pass a folder as {option}")
        self.owned = self._read_manifest()
        self.written: set[str] = set()
        self._begun = False

    def _read_manifest(self) -> set[str]:
        path = self.root / MANIFEST
        if path.is_symlink() or not path.is_file():
            return set()
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return {ln for ln in lines if ln and not ln.startswith("#") and _valid(ln)}

    def _owns(self, rel: str) -> bool:
        return rel in self.owned or rel + "/" in self.owned

    def conflicts(self, rels: Iterable[str]) -> list[tuple[str, bool]]:
        """What stands in the way of writing ``rels``: foreign files, symbolic links, files where a
        folder is needed, as (``path: why``, whether ``force`` may replace it); with ``force`` only
        what force cannot fix."""
        out: list[tuple[str, bool]] = []
        for rel in rels:
            if not _valid(rel):
                raise ValueError(f"not a relative path inside the folder: {rel!r}")
            parts = PurePosixPath(rel.rstrip("/")).parts
            problem = None
            for i in range(1, len(parts)):
                above = self.root.joinpath(*parts[:i])
                if above.is_symlink():
                    problem = (f"{above}: is a symbolic link (harmonise does not write through links)", True)
                elif above.exists() and not above.is_dir():
                    problem = (f"{above}: is a file where harmonise needs a folder", self._owns("/".join(parts[:i])))
                if problem:
                    break
            target = self.root.joinpath(*parts)
            if problem is None and target.is_symlink():
                problem = (f"{target}: is a symbolic link (harmonise does not write through links)", True)
            elif problem is None and target.exists() and not self._owns(rel.rstrip("/")):
                if target.is_dir():  # a user's folder is never replaced, not even with force
                    problem = (f"{target}: is a folder harmonise did not write", False)
                else:
                    problem = (f"{target}: exists and harmonise did not write it", True)
            if problem is not None and not (self.force and problem[1]) and problem not in out:
                out.append(problem)  # a link above many targets is named once
        return out

    def check(self, rels: Iterable[str]) -> None:
        """Raise UsageError naming what stands in the way of writing ``rels`` (see :meth:`conflicts`)."""
        problems = self.conflicts(rels)
        if problems:
            more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
            fix = f"move them away, choose another {self.option} folder, or pass --force to replace them"
            if not all(forceable for _, forceable in problems):
                fix = f"move them away or choose another {self.option} folder"
            raise UsageError("; ".join(p for p, _ in problems[:_SHOWN]) + more + f" — {fix}")

    def begin(self, rels: Iterable[str]) -> None:
        """Check that ``rels`` may be written (else UsageError naming them) and claim them in the manifest."""
        rels = list(rels)
        self.check(rels)
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = self.root / SCRATCH
        if not self._begun:
            if scratch.is_symlink() or scratch.exists():
                if not (scratch.is_symlink() or SCRATCH + "/" in self.owned):
                    raise UsageError(f"{scratch}: exists and harmonise did not make it; move it away or choose "
                                     f"another {self.option} folder")
                _remove(scratch)  # a killed run's leftovers
            self.owned.add(SCRATCH + "/")
        self.owned.update(rels)
        self._write_manifest()
        if not self._begun:
            scratch.mkdir(mode=0o700)
            self._begun = True

    @contextmanager
    def path(self, rel: str) -> Iterator[Path]:
        """A temporary path to write ``rel`` to (a file, or a folder for a tree ``rel/``); it replaces
        the target when the block ends without error, else it is removed."""
        if not self._begun or rel not in self.owned:
            self.begin([rel])
        name = PurePosixPath(rel.rstrip("/")).name
        tmp = self.root / SCRATCH / f"{secrets.token_hex(4)}-{name}"
        try:
            yield tmp
            self._install(tmp, rel)
        finally:
            if tmp.is_symlink() or tmp.exists():
                _remove(tmp)

    def write_text(self, rel: str, text: str) -> bool:
        """Write ``text`` (UTF-8, ``\\n`` line ends) to ``rel`` unless it already holds it; True if written."""
        target = self.root / rel
        if (not target.is_symlink() and target.is_file() and self._owns(rel)
                and target.read_bytes() == text.encode("utf-8")):
            self.written.add(rel)
            return False
        with self.path(rel) as tmp:
            tmp.write_text(text, encoding="utf-8", newline="\n")
        return True

    def _install(self, tmp: Path, rel: str) -> None:
        parts = PurePosixPath(rel.rstrip("/")).parts
        folder = self.root
        for part in parts[:-1]:
            folder = folder / part
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                folder.unlink()  # allowed by begin(): force, or a file harmonise wrote
            folder.mkdir(exist_ok=True)
        target = folder / parts[-1]
        if target.is_dir() and not target.is_symlink():  # a tree harmonise wrote: swap, then drop the old one
            old = self.root / SCRATCH / f"{secrets.token_hex(4)}-old"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)  # replaces a link itself, never its target
        self.written.add(rel.rstrip("/") + ("/" if rel.endswith("/") else ""))

    def finish(self, remove_stale: bool = False) -> int:
        """Record what was written; with ``remove_stale`` delete the paths harmonise wrote before and not
        now. Returns how many were removed."""
        removed = 0
        if remove_stale:
            for rel in sorted(self.owned - self.written - {SCRATCH + "/"}):
                target = self.root / rel.rstrip("/")
                if self._inside(target) and (target.is_symlink() or target.exists()):
                    _remove(target)
                    removed += 1
                self.owned.discard(rel)
        scratch = self.root / SCRATCH
        if self._begun:
            _remove(scratch)
            self.owned.discard(SCRATCH + "/")
            self._write_manifest()
        return removed

    def _inside(self, target: Path) -> bool:
        """No folder between the root and ``target`` is a link (removing must not reach outside)."""
        p = target.parent
        while p != self.root:
            if p.is_symlink():
                return False
            p = p.parent
        return True

    def _write_manifest(self) -> None:
        body = _HEADER + "".join(f"{r}\n" for r in sorted(self.owned))
        tmp = self.root / f"{MANIFEST}.tmp-{os.getpid()}"
        tmp.write_text(body, encoding="utf-8", newline="\n")
        os.replace(tmp, self.root / MANIFEST)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None and self._begun:  # keep the claims (the next run may replace them), drop the scratch
            _remove(self.root / SCRATCH)


def _remove(path: Path) -> None:
    """Delete a file, a link (not what it points to) or a whole folder (links inside are not followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
