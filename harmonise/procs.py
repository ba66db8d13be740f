"""Child processes that do not outlive their parent (a killed build leaves no worker running)."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # prctl(2): a signal the kernel sends this process when its parent dies


def die_with_parent(parent: int) -> None:
    """Make this (child) process end when ``parent`` does: SIGKILL on the parent's death (Linux,
    ``prctl(PR_SET_PDEATHSIG)`` through ctypes), and exit at once if the parent is already gone.
    Elsewhere only the second part (children then end when their pipes to the parent close)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's time limit, `kill`, a container stopping) raised in the main thread as an
    interruption, so that what a Ctrl-C cleans up is cleaned up (a build's temporary database removed)."""


_RECEIVED: list[int] = []  # SIGTERM arrived within the current terminable() block


def _terminate(signum: int, frame: object) -> None:
    _RECEIVED.append(signum)  # DuckDB turns an exception raised in a query's signal check into its own error
    raise Terminated()


def terminated() -> bool:
    """Whether SIGTERM arrived within the last :func:`terminable` block (whatever error it surfaced as)."""
    return bool(_RECEIVED)


def _default_in_child() -> None:
    """A child forked within :func:`terminable` ends at SIGTERM as any process does (its parent cleans up); and
    the objects it inherits are left out of its garbage collections (``gc.freeze``): a collection walks every
    tracked object, and in a forked child that also copies each page it touches (1.6 CPU-seconds of the 298-file
    build went to collections, mostly the readers' and workers'; what a child inherits lives as long as it)."""
    gc.freeze()
    try:
        if signal.getsignal(signal.SIGTERM) is _terminate:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the child's main thread
        pass


@contextmanager
def terminable() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in this (main) thread; outside it, and in children
    forked meanwhile, SIGTERM is what it was. Only where SIGTERM has its default action: a handler someone
    else installed (an application embedding harmonise, a test runner) is left alone."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    _RECEIVED.clear()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_in_child)
