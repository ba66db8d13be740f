"""The validation server: `harmonise validate` answered by a warm process, exactly as run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harmonise import warm
from harmonise.cli import main
from tests.conftest import ESS8, ROOT


@pytest.fixture
def server_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = Path(f"/tmp/hw-{os.getpid()}-{tmp_path.name[-12:]}")  # Unix socket paths are short
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("HARMONISE_SERVER_DIR", str(folder))
    monkeypatch.setenv("HARMONISE_SERVER", "on")
    yield folder
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()


def _start(sock: Path, idle: float = 60, warm_up: list[str] | None = None) -> subprocess.Popen[bytes]:
    replay = [json.dumps(warm.request_of(warm_up))] if warm_up is not None else []
    proc = subprocess.Popen([sys.executable, "-m", "harmonise.warm", str(sock), str(ROOT), str(idle), *replay], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return proc


def test_split_command_finds_the_command_after_the_global_options() -> None:
    assert warm.split_command(["--debug", "--project", "p", "validate", "--data", "x"]) == ("validate", Path("p"))
    assert warm.split_command(["--project=q", "build"]) == ("build", Path("q"))
    assert warm.split_command(["--version"]) == (None, None)


def test_the_socket_names_the_project_and_the_code(tmp_path: Path) -> None:
    a = warm.socket_path(tmp_path, Path("/p"), "f1")
    assert a == warm.socket_path(tmp_path, Path("/p"), "f1")
    assert len({a, warm.socket_path(tmp_path, Path("/q"), "f1"), warm.socket_path(tmp_path, Path("/p"), "f2")}) == 3
    assert warm.code_fingerprint() == warm.code_fingerprint()


def test_a_folder_open_to_others_is_not_used(server_dir: Path) -> None:
    assert warm._private_dir(create=False) == server_dir
    server_dir.chmod(0o755)
    try:
        assert warm._private_dir(create=False) is None
    finally:
        server_dir.chmod(0o700)


@pytest.mark.skipif(not ESS8.exists(), reason="needs ../shared/data/ess8_fr")
def test_the_server_answers_as_the_command_run_here(server_dir: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    sock = warm.socket_path(server_dir, ROOT, "test")
    proc = _start(sock)
    try:
        for argv in (["validate", "--data", str(ESS8.parent)], ["validate", "--data", "no/such/folder"],
                     ["validate", "--format", "json", "--data", str(ESS8.parent)]):
            capsys.readouterr()
            code = warm.ask(sock, argv)
            served = capsys.readouterr()
            here = CliRunner().invoke(main, argv)
            assert (code, served.out + served.err) == (here.exit_code, here.output)
        assert warm.ask(sock, ["build", "--demo"]) == 2
        assert capsys.readouterr().err == "this server only runs `harmonise validate`\n"
        second = subprocess.run([sys.executable, "-m", "harmonise.warm", str(sock), str(ROOT)], check=False, timeout=60)
        assert second.returncode == 0 and proc.poll() is None  # one server per socket: the second leaves
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_server_answers_after_its_warm_up_whatever_the_warm_up_gave(server_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    for warm_up in (["validate", "--data", "no/such/folder"], ["validate", "--no-such-option"]):
        sock = warm.socket_path(server_dir, ROOT, "warm-up-" + warm_up[-1].replace("/", "-"))
        proc = _start(sock, warm_up=warm_up)
        try:
            capsys.readouterr()
            assert warm.ask(sock, ["validate", "--data", "no/such/folder"]) == 2
            served = capsys.readouterr()
            here = CliRunner().invoke(main, ["validate", "--data", "no/such/folder"])
            assert served.out + served.err == here.output and here.exit_code == 2
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_sigterm_ends_the_server_even_in_a_request(server_dir: Path) -> None:
    """A command turns SIGTERM into an interruption (procs.terminable); in the server that would have ended only
    the request running, the server living on: it keeps its own handler, with the default's effect."""
    import signal

    sock = warm.socket_path(server_dir, ROOT, "term")
    proc = _start(sock)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    code = subprocess.run([sys.executable, "-c", (
        "import signal, sys\n"
        "from harmonise import warm\n"
        "from harmonise.procs import terminable\n"
        "signal.signal(signal.SIGTERM, warm._die)\n"
        "with terminable():\n"
        "    assert signal.getsignal(signal.SIGTERM) is warm._die\n"
        "    signal.raise_signal(signal.SIGTERM)\n"
        "sys.exit(3)\n")], check=False, cwd=ROOT).returncode
    assert code == -signal.SIGTERM  # within a command's block too, the process ends by the signal


def test_an_idle_server_exits_and_removes_its_socket(server_dir: Path) -> None:
    sock = warm.socket_path(server_dir, ROOT, "idle")
    proc = _start(sock, idle=0.5)
    assert proc.wait(timeout=60) == 0
    assert not sock.exists()


def test_without_a_server_the_command_runs_here_and_starts_one(server_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    started: list[tuple[Path, Path, list[str] | None]] = []
    monkeypatch.setattr(warm, "start_server", lambda sock, root, warm_up=None: started.append((sock, root, warm_up)))
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["harmonise", "validate", "--help"])
    with pytest.raises(SystemExit) as exc:
        warm.entry()
    assert exc.value.code == 0 and "Usage: harmonise validate" in capsys.readouterr().out
    assert started == [(warm.socket_path(server_dir, ROOT, warm.code_fingerprint()), ROOT, ["validate", "--help"])]
    monkeypatch.setenv("HARMONISE_SERVER", "off")
    with pytest.raises(SystemExit):
        warm.entry()
    monkeypatch.setattr(sys, "argv", ["harmonise", "sql", "--help"])
    monkeypatch.setenv("HARMONISE_SERVER", "on")
    with pytest.raises(SystemExit):
        warm.entry()
    assert len(started) == 1


@pytest.mark.parametrize(("server", "ci", "used"), [
    ("", "", True), ("off", "", False), ("", "true", False), ("", "1", False), ("on", "true", True),
    ("", "false", True), ("0", "true", False)])
def test_a_ci_runner_uses_no_server_unless_asked(monkeypatch: pytest.MonkeyPatch, server: str, ci: str,
                                                 used: bool) -> None:
    """A validate on a CI runner started a background server that validated everything a second time."""
    monkeypatch.setenv("HARMONISE_SERVER", server)
    monkeypatch.setenv("CI", ci)
    assert warm.enabled() is used
