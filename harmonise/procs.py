"""Child processes that do not outlive their parent (a killed build leaves no worker running)."""

from __future__ import annotations

import os
import signal
import sys

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
