"""SIGTERM as an interruption (harmonise.procs.terminable)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from harmonise.procs import Terminated, terminable, terminated


@pytest.fixture
def default_sigterm() -> Iterator[None]:
    """SIGTERM at its default action for the test (a test runner may have its own handler)."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_within_the_block_raises_terminated_and_the_default_comes_back(default_sigterm: None) -> None:
    with pytest.raises(Terminated), terminable():
        assert not terminated()
        os.kill(os.getpid(), signal.SIGTERM)
    assert terminated()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with terminable():
        assert not terminated()  # each block starts afresh


def test_a_handler_someone_else_installed_is_left_alone(default_sigterm: None) -> None:
    def theirs(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGTERM, theirs)
    with terminable():
        assert signal.getsignal(signal.SIGTERM) is theirs
    assert signal.getsignal(signal.SIGTERM) is theirs


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_within_the_block_ends_at_sigterm_as_any_process(default_sigterm: None) -> None:
    with terminable():
        pid = os.fork()
        if pid == 0:
            os._exit(0 if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
