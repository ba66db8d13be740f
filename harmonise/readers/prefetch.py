"""Read a source file's chunks in a child process, one chunk ahead of the consumer.

pyreadstat holds the GIL while it parses, so a reader thread cannot overlap
with the Python work of harmonising; a forked child can. The child reads and
normalises chunk k+1 while the parent harmonises chunk k (a pipe send blocks
until the parent takes the chunk, so at most one chunk waits). Without ``fork``
(Windows, macOS spawn) or with one core the chunks are read in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection

import pandas as pd

from harmonise.errors import InputError
from harmonise.readers.files import DEFAULT_CHUNK, SourceFile


def can_prefetch() -> bool:
    """True when a forked reader can run beside the consumer (fork available, more than one core)."""
    return "fork" in mp.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _feed(src: SourceFile, columns: list[str], chunksize: int, out: Connection) -> None:
    try:
        try:
            for chunk in src.chunks(columns, chunksize):
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
    """Iterator over the chunks a forked child reads; the child starts at construction."""

    def __init__(self, src: SourceFile, columns: list[str], chunksize: int) -> None:
        ctx = mp.get_context("fork")
        self.src = src
        self._receive, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_feed, args=(src, columns, chunksize, send), daemon=True)
        self._proc.start()
        send.close()
        self._done = False

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self

    def __next__(self) -> pd.DataFrame:
        if self._done:
            raise StopIteration
        try:
            kind, payload = self._receive.recv()
        except EOFError:
            self.close()
            raise InputError(f"{self.src.path}: the reader process ended unexpectedly (exit code "
                             f"{self._proc.exitcode}); run again, or check memory limits") from None
        if kind == "chunk":
            return payload  # type: ignore[no-any-return]
        self.close()
        if kind == "error":
            raise InputError(str(payload))
        raise StopIteration

    def close(self) -> None:
        """Stop the child (if still reading) and release the pipe."""
        if self._done:
            return
        self._done = True
        self._receive.close()
        self._proc.join(timeout=0.5 if self._proc.exitcode is None else None)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()


def prefetched_chunks(src: SourceFile, columns: list[str], chunksize: int = DEFAULT_CHUNK,
                      enabled: bool = True) -> Iterator[pd.DataFrame]:
    """The same frames as ``src.chunks(columns, chunksize)``; read by a child process that starts now
    when ``enabled`` and possible. Call ``close()`` on the result when not reading it to the end."""
    if not (enabled and can_prefetch()):
        return src.chunks(columns, chunksize)
    return Prefetcher(src, columns, chunksize)
