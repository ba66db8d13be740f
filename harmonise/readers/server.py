"""Reader children forked from a small process when the one asking is big (docs/decisions.md 49).

A reader runs in a forked child so that a C reader crashing on a corrupt file cannot kill harmonise
(:func:`harmonise.readers.isolation.isolated`). A fork copies the page tables of the whole process, and
the parent pays copy-on-write faults while the child lives: about 5 ms for a 70 MB process, 30 ms and
more for a 500 MB one, and a header read that takes 10 ms took 53 ms of wall time in a 440 MB
process. A long-lived big process (a notebook, the validation server, a test worker) therefore starts
one *reader server* — a fresh interpreter holding the readers and little else — and has it fork the
children: a process of at least :data:`SERVER_MIN_RSS` that asked for more than
:data:`SERVER_AFTER` children. Short commands never start it (its start, ~0.3 s of CPU, would cost
more than it saves). multiprocessing's ``forkserver`` does the same but runs the asking program's
main script again in every child, which a library cannot impose on its callers' scripts.

The server gets each request over a Unix socket: the call's pickle (with the asking process's working
directory and environment, which the child takes on) through a pipe, and the ends of
the child's output pipe and of a status pipe (the child's pid, then its wait status once reaped).
What it cannot run (a call that does not pickle, a server that died) runs in a child forked here.
The server ends when its socket closes (the asking process and its forked children are gone); its
children die with it.
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from harmonise.procs import die_with_parent

PRELOAD = ("harmonise.readers.files",)  # imported by the server once, not by each child
SERVER_MIN_RSS = 256 << 20  # bytes of resident memory from which a fork costs ~15 ms more than the server's
SERVER_AFTER = 8  # children a process asks for before they come from a server (a short command asks for 1-3)
NOT_STARTED = -1  # the status the server sends when it could not start the child (the caller forks it itself)


class Child:
    """A started reader child: ``out`` is the read end of its output pipe; :meth:`wait` its wait status
    (as ``os.waitpid`` gives it)."""

    def __init__(self, pid: int, out: int, status: int | None = None) -> None:
        self.pid, self.out, self._status = pid, out, status

    def wait(self) -> int:
        if self._status is None:
            return os.waitpid(self.pid, 0)[1]
        try:
            data = _read_exactly(self._status, 8)
        finally:
            os.close(self._status)
        # the server died before reaping the child: as if the child had been killed
        return int.from_bytes(data, "little", signed=True) if len(data) == 8 else signal.SIGKILL


def start(target: Callable[..., None], args: tuple[Any, ...]) -> Child:
    """``target(out_fd, *args)`` in a forked child (from the reader server when this process has one or
    should start one), ``out_fd`` the write end of the child's output pipe; the child exits when
    ``target`` returns."""
    client = _client()
    if client is not None:
        child = client.start(target, args)
        if child is not None:
            return child
    rfd, wfd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child)
        os.close(rfd)
        _run(target, args, wfd, parent)
    os.close(wfd)
    return Child(pid, rfd)


def _run(target: Callable[..., None], args: tuple[Any, ...], out: int, parent: int) -> None:  # pragma: no cover
    """A child's life: no C stack dumps (a crash is the parent's to report), dies with ``parent``."""
    try:
        faulthandler.disable()
        die_with_parent(parent)
        target(out, *args)
    finally:
        os._exit(0)


def _read_exactly(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = os.read(fd, n - len(data))
        if not more:
            break
        data += more
    return data


# --- the asking side --------------------------------------------------------------------------------

class _Client:
    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = (f"import sys; sys.path[:] = {[p for p in sys.path if p]!r}; "
                f"from harmonise.readers.server import serve; serve({theirs.fileno()}, {PRELOAD!r})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.sock, self.owner, self.lock = mine, os.getpid(), threading.Lock()

    def start(self, target: Callable[..., None], args: tuple[Any, ...]) -> Child | None:
        try:
            payload = pickle.dumps((os.getcwd(), dict(os.environ), target, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001  (not picklable: a closure, an open file): forked here instead
            return None
        call_r, call_w = os.pipe()
        out_r, out_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            with self.lock:
                socket.send_fds(self.sock, [b"run"], [call_r, out_w, status_w])
        except OSError:
            for fd in (call_r, call_w, out_r, out_w, status_r, status_w):
                os.close(fd)
            return None
        for fd in (call_r, out_w, status_w):
            os.close(fd)
        try:
            with os.fdopen(call_w, "wb") as fh:
                fh.write(payload)
        except OSError:  # the server died meanwhile
            pass
        pid = int.from_bytes(_read_exactly(status_r, 8).ljust(8, b"\xff"), "little", signed=True)
        if pid <= 0:  # not started: the call did not unpickle there, or the server is gone
            os.close(out_r)
            os.close(status_r)
            return None
        return Child(pid, out_r, status_r)

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_CLIENT: _Client | None = None
_ASKED = 0  # children this process asked for
_STARTING = threading.Lock()  # two threads asking at once start one server


def _client() -> _Client | None:
    """This process's reader server, started once it qualifies (Linux, big, long-lived); None otherwise."""
    global _CLIENT, _ASKED
    with _STARTING:
        if _CLIENT is not None and _CLIENT.owner == os.getpid():
            return _CLIENT
        _ASKED += 1
        if not sys.platform.startswith("linux") or _ASKED <= SERVER_AFTER or _rss() < SERVER_MIN_RSS:
            return None
        try:
            _CLIENT = _Client()
        except OSError:
            return None
        atexit.register(_CLIENT.close)
        return None  # this child is forked here while the server starts: the next one comes from it


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_INHERITED: list[_Client] = []  # a forked child's copy of its parent's client: kept, never used or waited for


def _forget() -> None:
    """In a forked child: the parent's server is not this process's (its socket is the parent's); the
    lock is new (another thread of the parent may have held it at the fork)."""
    global _CLIENT, _ASKED, _STARTING
    if _CLIENT is not None:
        _CLIENT.sock.close()
        _INHERITED.append(_CLIENT)
    _CLIENT, _ASKED, _STARTING = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget)


# --- the server ---------------------------------------------------------------------------------------

def serve(fd: int, preload: tuple[str, ...] = ()) -> None:  # pragma: no cover  (in the server; tests use start)
    """The reader server's loop on the socket ``fd``: fork a child per request, report its pid and,
    once reaped, its wait status; end when the socket closes. ``preload``: modules imported first, once
    for every child (a request's own modules are imported as its call unpickles, and kept too)."""
    import importlib

    for name in preload:
        importlib.import_module(name)
    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    status_of: dict[int, int] = {}
    while True:
        ready = select.select([fd, wake_r], [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(status_of)
        if fd not in ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 16, 3)
        except OSError:
            break
        if not msg:  # the asking process and its children are gone
            break
        call_r, out_w, status_w = fds
        pid = NOT_STARTED
        try:
            with os.fdopen(call_r, "rb") as fh:
                cwd, env, target, args = pickle.loads(fh.read())  # from the process that started this server
        except Exception:  # noqa: BLE001  (the asking side forks the child itself)
            target = None
        if target is not None:
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for other in (fd, wake_r, wake_w, status_w, *status_of.values()):
                    os.close(other)
                try:  # where and with what the asking process runs now (relative paths, TMPDIR)
                    os.chdir(cwd)
                    os.environ.clear()
                    os.environ.update(env)
                except OSError:
                    os._exit(1)  # the asking side reports it as a crash and reads again in a new interpreter
                _run(target, args, out_w, os.getppid())
            status_of[pid] = status_w
        os.close(out_w)
        try:
            os.write(status_w, pid.to_bytes(8, "little", signed=True))
        except OSError:
            pass
        if pid == NOT_STARTED:
            os.close(status_w)
        _reap(status_of)


def _reap(status_of: dict[int, int]) -> None:  # pragma: no cover  (in the server)
    while status_of:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status_of.pop(pid, None)
        if fd is not None:
            try:
                os.write(fd, status.to_bytes(8, "little", signed=True))
            except OSError:
                pass
            os.close(fd)
