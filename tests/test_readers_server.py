"""readers.server: a big long-lived process forks its reader children from a small server process; the
answers, the crash reports and the clean-up are those of children forked in the process itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, twice_unless_crashing

from harmonise.readers import server
from harmonise.readers.files import _read
from harmonise.readers.isolation import ReaderCrashed, _in_child, isolated, isolated_map

ESS8 = ROOT.parent / "shared" / "data" / "ess8_fr" / "ESS8FR.sav"


@pytest.fixture(scope="module")
def served() -> Iterator[int]:
    """This process with a reader server (whatever its size), shared by the module's tests; its pid."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server, "SERVER_MIN_RSS", 0)
        mp.setattr(server, "SERVER_AFTER", 0)
        mp.setattr(server, "_CLIENT", None)
        mp.setattr(server, "_ASKED", 0)
        assert isolated(_parent_pid) == os.getpid()  # the call that starts the server forks its child here
        client = server._CLIENT
        assert client is not None
        yield client.proc.pid
        client.close()


def _parent_pid(_: object = None) -> int:
    return os.getppid()


def test_children_come_from_the_server_once_started_and_answer_the_same(served: int) -> None:
    direct = _read("sav", str(ESS8), metadataonly=True, output_format="dict")[1]
    assert isolated(_parent_pid) == served  # from the second call on the server forks them
    meta = isolated(_read, "sav", str(ESS8), metadataonly=True, output_format="dict")[1]
    assert (meta.column_names, meta.number_rows, meta.variable_value_labels) == \
        (direct.column_names, direct.number_rows, direct.variable_value_labels)
    assert isolated_map(_parent_pid, [1, 2, 3], 2) == [served] * 3


def test_a_crash_is_reported_with_its_signal_and_an_error_as_raised(served: int) -> None:
    with pytest.raises(ReaderCrashed, match=r"^signal 11$"):
        _in_child(twice_unless_crashing, "crash")
    with pytest.raises(ValueError, match="^a readable error$"):
        _in_child(twice_unless_crashing, "raise")
    assert _in_child(twice_unless_crashing, "a") == "aa"


def _where(_: object = None) -> tuple[str, str | None]:
    return os.getcwd(), os.environ.get("HARMONISE_SERVER_TEST")


def test_a_child_runs_where_and_with_what_the_asking_process_runs_now(served: int, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARMONISE_SERVER_TEST", "set after the server started")
    assert isolated(_parent_pid) == served
    assert isolated(_where) == (str(tmp_path), "set after the server started")
    (tmp_path / "relative.sav").write_bytes(ESS8.read_bytes())
    assert isolated(_read, "sav", "relative.sav", metadataonly=True, output_format="dict")[1].number_rows == \
        _read("sav", str(ESS8), metadataonly=True, output_format="dict")[1].number_rows


def test_what_does_not_pickle_is_forked_here(served: int) -> None:
    assert isolated(_parent_pid) == served
    assert isolated(lambda: os.getppid()) == os.getpid()


def test_a_small_or_short_lived_process_starts_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_CLIENT", None)
    monkeypatch.setattr(server, "_ASKED", 0)
    monkeypatch.setattr(server, "SERVER_MIN_RSS", 1 << 50)
    assert [isolated(_parent_pid) for _ in range(server.SERVER_AFTER + 2)] == [os.getpid()] * (server.SERVER_AFTER + 2)
    assert server._CLIENT is None
    monkeypatch.setattr(server, "SERVER_MIN_RSS", 0)
    monkeypatch.setattr(server, "_ASKED", 0)
    assert [isolated(_parent_pid) for _ in range(server.SERVER_AFTER)] == [os.getpid()] * server.SERVER_AFTER
    assert server._CLIENT is None  # not yet: a short command asks for fewer children than that


DRIVER = """
import os, sys, time
from harmonise.readers import server
from harmonise.readers.isolation import isolated
server.SERVER_MIN_RSS = server.SERVER_AFTER = 0
isolated(os.getppid)  # starts the server
pid = os.fork()
if pid == 0:  # a forked child of the asking process: not the server's client, forks its own
    print("forked", isolated(os.getppid) == os.getpid(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
from harmonise.readers.isolation import _answer
print(server._CLIENT.proc.pid, flush=True)
long = server.start(_answer, (time.sleep, (60,), {}))
print(long.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_server_and_its_children_end_when_the_asking_process_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["forked", "True"]
    server_pid, child_pid = int(proc.stdout.readline()), int(proc.stdout.readline())
    assert _alive(server_pid) and _alive(child_pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while (_alive(server_pid) or _alive(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(server_pid) and not _alive(child_pid)
