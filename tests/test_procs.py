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


def test_a_forked_child_leaves_what_it_inherits_out_of_its_collections() -> None:
    import gc

    held = [[i] for i in range(1000)]  # tracked objects the child inherits
    before = gc.get_freeze_count()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child)
        os.write(wfd, str(gc.get_freeze_count()).encode())
        os._exit(0)
    os.close(wfd)
    frozen = int(os.read(rfd, 64))
    os.close(rfd)
    os.waitpid(pid, 0)
    assert frozen >= before + len(held)
    assert gc.get_freeze_count() == before  # the parent's collections are as they were


def test_the_command_runs_on_one_blas_thread_unless_the_user_says_otherwise() -> None:
    import subprocess
    import sys

    code = "import os, harmonise.cli; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split() == ["1", "1"]
    assert subprocess.run([sys.executable, "-c", code], env={**env, "OPENBLAS_NUM_THREADS": "4"},
                          capture_output=True, text=True, check=True).stdout.split() == ["4", "1"]
