"""Calls that may crash the C reader, made in forked children (:func:`isolated`, :func:`isolated_map`), so that a
corrupt file cannot kill harmonise: results and exceptions come back pickled through a pipe, and a child killed by a
signal is tried once more in a freshly started interpreter (out of ``files`` since the twenty-fifth session)."""

from __future__ import annotations

import gc
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from harmonise.readers.server import Child, start


class ReaderCrashed(Exception):
    """The C reader died (e.g. a segmentation fault on a corrupt header) in an isolated child process."""


def isolated(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a forked child, so a reader crashing on a corrupt file cannot kill harmonise.

    The result or the exception comes back pickled through a pipe (from our own child, so trusted).
    A forked child killed by a signal is tried once more in a freshly started interpreter before the
    file is called corrupt: a fork inherits this process's state (another thread's locks, library
    caches), which crashed the reader on a sound file in long test runs.
    """
    if not hasattr(os, "fork"):
        return fn(*args, **kwargs)
    try:
        return _in_child(fn, *args, **kwargs)
    except ReaderCrashed as first:
        try:
            return _in_fresh_process(fn, *args, **kwargs)
        except ReaderCrashed:
            raise first from None


def direct(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` here: :func:`isolated`'s stand-in where nothing is isolated."""
    return fn(*args, **kwargs)


def isolated_map(fn: Callable[[Any], Any], items: list[Any], workers: int = 1) -> list[Any]:
    """``[fn(item) for item in items]`` in forked children, ``workers`` of them each taking every
    ``workers``-th item: one fork for many files instead of one per file (:func:`isolated`'s ~20 ms).

    An exception ``fn`` raises is returned in the item's place (so ``fn`` itself never returns one). When a child dies (a reader crash),
    its item is run once more through :func:`isolated` (its exception or ``ReaderCrashed`` in its
    place) and a new child takes the items after it. Without ``fork`` the calls run in this process.
    """
    if not items:
        return []
    if not hasattr(os, "fork") or len(items) == 1:
        return [_outcome(isolated, fn, item) for item in items]
    results: dict[int, Any] = {}
    todo = [list(range(j, len(items), max(1, workers))) for j in range(min(max(1, workers), len(items)))]
    running: dict[BinaryIO, tuple[Child, list[int]]] = {}  # reading end → (child, its items not yet answered)

    def begin(share: list[int]) -> None:
        child = start(_answer_each, (fn, [(i, items[i]) for i in share]))
        running[os.fdopen(child.out, "rb")] = (child, list(share))

    for share in todo:
        begin(share)
    with _collector_paused():  # the answers are many small objects, none of them garbage
        _collect(running, results, items, fn, begin)
    return [results[i] for i in range(len(items))]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off, then as it was: unpickling thousands of objects (a file's metadata
    is ~20,000 of them) set off full collections over everything alive: 290 ESS country files' metadata
    unpickled in 1.98 s with the collector on, 0.42 s with it off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _collect(running: dict[BinaryIO, tuple[Child, list[int]]], results: dict[int, Any], items: list[Any],
             fn: Callable[[Any], Any], begin: Callable[[list[int]], None]) -> None:
    """:func:`isolated_map`'s answers into ``results`` as the children send them."""
    from multiprocessing.connection import wait

    while running:
        by_fd = {fh.fileno(): fh for fh in running}
        for ready in wait(list(by_fd)):
            fh = by_fd[cast(int, ready)]
            child, share = running[fh]
            head = fh.read(8)
            body = fh.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
            if body and len(body) == int.from_bytes(head, "little"):
                i, value = pickle.loads(body)  # written by our own child (:func:`_answer_each`)
                results[i] = value
                share.remove(i)
                continue
            fh.close()
            del running[fh]
            child.wait()
            if share:  # the child died at share[0]: that item alone, isolated, then a new child for the rest
                results[share[0]] = _outcome(isolated, fn, items[share[0]])
                if share[1:]:
                    begin(share[1:])


def _outcome(call: Callable[..., Any], fn: Callable[[Any], Any], item: Any) -> Any:
    try:
        return call(fn, item)
    except Exception as exc:  # noqa: BLE001  (returned in the item's place)
        return exc


def _in_fresh_process(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a newly started interpreter (no state inherited); ReaderCrashed if it dies."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        pickle.dumps((fn, args, kwargs))  # a new interpreter gets the call by pickle
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ReaderCrashed("the call cannot be sent to a new interpreter") from exc
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool as exc:
            raise ReaderCrashed("the reader died") from exc


def _answer(out: int, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """In a reader child: ``fn``'s result, or the exception it raised, pickled to ``out``."""
    try:
        payload = pickle.dumps((True, fn(*args, **kwargs)))
    except BaseException as exc:  # noqa: BLE001  (handed to the parent, re-raised there)
        try:
            payload = pickle.dumps((False, exc))
        except Exception:  # noqa: BLE001
            payload = pickle.dumps((False, ValueError(str(exc))))
    with os.fdopen(out, "wb") as fh:
        fh.write(payload)


def _answer_each(out: int, fn: Callable[[Any], Any], items: list[tuple[int, Any]]) -> None:
    """In a reader child: ``(i, fn(item))`` (or the exception in its place) for each item, each pickle
    written to ``out`` after its length."""
    with os.fdopen(out, "wb") as fh:
        for i, item in items:
            try:
                answer: tuple[int, Any] = (i, fn(item))
            except Exception as exc:  # noqa: BLE001  (handed to the parent, returned in the item's place)
                answer = (i, exc)
            try:
                data = pickle.dumps(answer)
            except Exception as exc:  # noqa: BLE001
                data = pickle.dumps((i, ValueError(str(exc))))
            fh.write(len(data).to_bytes(8, "little") + data)
            fh.flush()


def _in_child(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    child = start(_answer, (fn, args, kwargs))
    with os.fdopen(child.out, "rb") as fh:
        payload = fh.read()
    status = child.wait()
    if os.WIFSIGNALED(status) or not payload:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        raise ReaderCrashed(f"signal {sig}" if sig else f"exit status {os.waitstatus_to_exitcode(status)}")
    ok, value = pickle.loads(payload)  # written by our own child (:func:`_answer`)
    if ok:
        return value
    raise value
