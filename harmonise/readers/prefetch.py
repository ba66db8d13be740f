"""Read a source file's chunks in child processes, one chunk ahead of the consumer.

pyreadstat holds the GIL while it parses, so a reader thread cannot overlap
with the Python work of harmonising; a forked child can. The child reads and
normalises chunk k+1 while the parent harmonises chunk k (a pipe send blocks
until the parent takes the chunk, so at most one chunk waits). Files whose rows
can be skipped without parsing them (uncompressed .sav, .dta) are read by one
child per core, each reading its slice of every chunk; the parent joins the
slices in row order. Many small files are read whole, one after another, by one
child (:class:`FileFeed`). Without ``fork`` (Windows, macOS spawn) or with one core
the chunks are read in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection

import pandas as pd

from harmonise.errors import InputError
from harmonise.procs import die_with_parent
from harmonise.readers.files import DEFAULT_CHUNK, SourceFile

MAX_READERS = 2  # more readers than this contend with the consumer for the cores


def can_prefetch() -> bool:
    """True when a forked reader can run beside the consumer (fork available, more than one core)."""
    return "fork" in mp.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _feed(src: SourceFile, columns: list[str], size: int, start: int, step: int, out: Connection,
          parent: int) -> None:
    die_with_parent(parent)  # it holds the pipe's other end too: a killed parent would leave it blocked in send
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes the pipe
    try:
        try:
            for chunk in src.chunks(columns, size, start, step):
                out.send(("chunk", chunk))
            message: tuple[str, object] = ("end", None)
        except InputError as exc:
            message = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            message = ("error", f"{src.path}: reading failed in the reader process ({type(exc).__name__}: {exc})")
        out.send(message)
    except OSError:  # the parent stopped reading (closed its end): nothing left to do
        pass
    finally:
        out.close()


class Prefetcher:
    """Iterator over the chunks forked children read; the children start at construction.

    With ``readers`` > 1, child j reads rows [k·chunksize + j·s, k·chunksize + (j+1)·s) of every
    chunk k (s = chunksize / readers) and the parent concatenates the slices.
    """

    def __init__(self, src: SourceFile, columns: list[str], chunksize: int, readers: int = 1) -> None:
        ctx = mp.get_context("fork")
        self.src = src
        size = max(1, -(-chunksize // readers))
        self._pipes: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        for j in range(readers):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_feed, args=(src, columns, size, j * size, readers * size, send, os.getpid()),
                               daemon=True)
            proc.start()
            send.close()
            self._pipes.append(receive)
            self._procs.append(proc)
        self._open = list(range(readers))  # readers that have not said "end"
        self._done = False

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self

    def _receive(self, j: int) -> pd.DataFrame | None:
        """Reader j's next slice; None when it has no more."""
        try:
            kind, payload = self._pipes[j].recv()
        except EOFError:
            code = self._procs[j].exitcode
            self.close()
            raise InputError(f"{self.src.path}: the reader process ended unexpectedly (exit code "
                             f"{code}); run again, or check memory limits") from None
        if kind == "chunk":
            return payload  # type: ignore[no-any-return]
        if kind == "error":
            self.close()
            raise InputError(str(payload))
        return None

    def __next__(self) -> pd.DataFrame:
        if self._done:
            raise StopIteration
        parts = []
        for j in list(self._open):
            part = self._receive(j)
            if part is None:
                self._open.remove(j)
            else:
                parts.append(part)
        if not parts:
            self.close()
            raise StopIteration
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def close(self) -> None:
        """Stop the children (if still reading) and release the pipes."""
        if self._done:
            return
        self._done = True
        for pipe in self._pipes:
            pipe.close()
        for proc in self._procs:
            proc.join(timeout=0.5 if proc.exitcode is None else None)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def prefetched_chunks(src: SourceFile, columns: list[str], chunksize: int = DEFAULT_CHUNK,
                      enabled: bool = True) -> Iterator[pd.DataFrame]:
    """The same frames as ``src.chunks(columns, chunksize)``; read by child processes that start now
    when ``enabled`` and possible (one per core for files that seek to a row, else one). Call
    ``close()`` on the result when not reading it to the end."""
    if not (enabled and can_prefetch()):
        return src.chunks(columns, chunksize)
    readers = min(os.cpu_count() or 1, MAX_READERS) if src.seekable() else 1
    return Prefetcher(src, columns, chunksize, readers)


def _feed_files(items: list[tuple[SourceFile, list[str]]], chunksize: int, out: Connection, parent: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (no traceback from here)
    try:
        for i, (src, columns) in enumerate(items):
            try:
                message: tuple[str, int, object] = ("frames", i, list(src.chunks(columns, chunksize)))
            except InputError as exc:
                message = ("error", i, str(exc))
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
                message = ("error", i, f"{src.path}: reading failed in the reader process ({type(exc).__name__}: {exc})")
            out.send(message)
    except OSError:  # the parent stopped reading (closed its end): nothing left to do
        pass
    finally:
        out.close()


class FileFeed:
    """Whole files read one after another by one forked child, a file ahead of the consumer: for many
    small files, one reader instead of one per file. :meth:`take` the files' frames in order (a file
    not taken is skipped); a file's read error is raised when it is taken."""

    def __init__(self, items: list[tuple[SourceFile, list[str]]], chunksize: int = DEFAULT_CHUNK,
                 enabled: bool = True) -> None:
        self.items = items
        self.chunksize = chunksize
        # by the file and its columns: the jobs of a file of several waves share its SourceFile
        self._index = {(id(src), tuple(columns)): i for i, (src, columns) in enumerate(items)}
        self._pipe: Connection | None = None
        self._proc: mp.process.BaseProcess | None = None
        self._next = 0  # the index the child sends next
        if items and enabled and can_prefetch():
            ctx = mp.get_context("fork")
            receive, send = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_feed_files, args=(items, chunksize, send, os.getpid()), daemon=True)
            self._proc.start()
            send.close()
            self._pipe = receive

    def take(self, src: SourceFile, columns: list[str]) -> list[pd.DataFrame]:
        """The frames of ``src`` read as ``columns`` (one of the items, as ``src.chunks`` yields them); files before
        it that were not taken are dropped."""
        i = self._index[(id(src), tuple(columns))]
        if self._pipe is None or i < self._next:
            return list(src.chunks(columns, self.chunksize))
        while True:
            try:
                kind, j, payload = self._pipe.recv()
            except EOFError:
                code = self._proc.exitcode if self._proc is not None else None
                self.close()
                raise InputError(f"{src.path}: the reader process ended unexpectedly (exit code {code}); "
                                 "run again, or check memory limits") from None
            self._next = j + 1
            if j < i:
                continue
            if kind == "error":
                raise InputError(str(payload))
            return payload  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the child (if still reading) and release the pipe."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._proc is not None:
            self._proc.join(timeout=0.5 if self._proc.exitcode is None else None)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
            self._proc = None


# Whole small files' frames by their bytes and how they are read, kept by a long-lived process (the
# validation server) that calls remember_frames(): validating the same file again after an edit reads
# it no more.
_FRAMES: dict[tuple[str, str, tuple[str, ...]], tuple[list[pd.DataFrame], int]] | None = None  # frames, bytes
FRAMES_BYTES = 256 * 2**20  # at most this much kept; the oldest files go first


def remember_frames() -> None:
    """Keep the frames of small files read whole (see :func:`recall_frames`) for the rest of this process."""
    global _FRAMES
    if _FRAMES is None:
        _FRAMES = {}


def _key(sha256: str, src: SourceFile, columns: list[str]) -> tuple[str, str, tuple[str, ...]]:
    how = f"{src.encoding}|{src.codec is not None}|{sorted((k, repr(v)) for k, v in src.virtual.items())}"
    return sha256, how, tuple(columns)


def has_frames(sha256: str | None, src: SourceFile, columns: list[str]) -> bool:
    """Frames are kept for the file with these bytes read as ``src`` reads ``columns``."""
    return _FRAMES is not None and bool(sha256) and _key(sha256 or "", src, columns) in _FRAMES


def recall_frames(sha256: str | None, src: SourceFile, columns: list[str]) -> list[pd.DataFrame] | None:
    """A copy of the frames kept for the file with these bytes read as ``src`` reads ``columns``."""
    if not has_frames(sha256, src, columns):
        return None
    assert _FRAMES is not None
    return [f.copy() for f in _FRAMES[_key(sha256 or "", src, columns)][0]]


def keep_frames(sha256: str | None, src: SourceFile, columns: list[str], frames: list[pd.DataFrame]) -> None:
    """Keep a copy of a file's frames when :func:`remember_frames` was called (and its digest is known)."""
    if _FRAMES is None or not sha256:
        return
    kept = [f.copy() for f in frames]
    _FRAMES[_key(sha256, src, columns)] = (kept, sum(int(f.memory_usage(deep=True).sum()) for f in kept))
    total = sum(size for _, size in _FRAMES.values())
    while total > FRAMES_BYTES and _FRAMES:
        total -= _FRAMES.pop(next(iter(_FRAMES)))[1]
