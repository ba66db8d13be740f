"""A warm process for `harmonise validate`, the mapping author's loop (run on every save).

Starting Python and importing pandas, DuckDB, pyreadstat and pandera costs ~0.75 s before any
work; checking a 2,000-row country file takes ~0.4 s more. So `harmonise validate` first asks a
*validation server* — a process of the same user, started on the first run, that has those
imports loaded — to run the command, and prints what it answers; the output and exit code are
those of running the command here (its output is rendered as when it is not written to a
terminal). Every request loads the project and looks at its files afresh, so an edited crosswalk or
file is always seen; what the server keeps between requests is keyed by the content it follows from
(a crosswalk's and each wave's static issues, a declared codebook's model, a file's header and a
small file's rows by its sha256; pandera's verdicts are kept per variable in every process), so a kept
result is never stale.

- The server listens on a Unix socket in ``$HARMONISE_SERVER_DIR`` (default
  ``$XDG_RUNTIME_DIR/harmonise``, else ``/tmp/harmonise-<uid>``), a folder that must be the
  user's own with mode 0700 (else the command runs here). The socket's name is a hash of the
  project folder, the Python interpreter and harmonise's code (every module's path, size and
  modification time), so a changed installation never answers with old code.
- It only runs `validate`; it exits after ``IDLE_SECONDS`` without a request.
- ``HARMONISE_SERVER=off`` runs every command here and starts no server (the test suite sets it).
- When no server answers, the command runs here, then a server is started in the background
  (one per socket: a lock file keeps a second one from starting). Before it listens, the server runs
  that command once, its output discarded, so the next save is answered warm (the first request
  of a fresh process pays for first reads and first uses: ~2.5 s instead of ~0.7 s for ESS8 FR).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

IDLE_SECONDS = 900
COMMANDS = ("validate",)
_PACKAGE = Path(__file__).resolve().parent
_MAX_REQUEST = 1 << 20


OFF = ("off", "0", "no", "false")


def enabled() -> bool:
    """Whether ``validate`` uses the server: unless ``HARMONISE_SERVER`` is off — or unset on a CI runner (``CI``
    set, as GitHub Actions and GitLab set it), where each job runs once and a server would only validate
    everything a second time in the background."""
    asked = os.environ.get("HARMONISE_SERVER", "").lower()
    on_ci = os.environ.get("CI", "").lower() not in ("", *OFF)
    return asked not in OFF and (bool(asked) or not on_ci) and hasattr(socket, "AF_UNIX")


def server_dir() -> Path:
    env = os.environ.get("HARMONISE_SERVER_DIR")
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "harmonise" if runtime else Path(f"/tmp/harmonise-{os.getuid()}")


def _private_dir(create: bool) -> Path | None:
    """The server folder if it is the user's own and closed to others (created so when asked), else None."""
    folder = server_dir()
    if create:
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return folder


def code_fingerprint() -> str:
    """harmonise's code as installed (each module's path, size and mtime) and the interpreter."""
    h = hashlib.sha256(sys.executable.encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        st = path.stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def socket_path(folder: Path, root: Path, fingerprint: str) -> Path:
    """The socket of the server for ``root`` under this code (short: Unix socket paths are limited)."""
    return folder / (hashlib.sha256(f"{root}\0{fingerprint}".encode()).hexdigest()[:20] + ".sock")


def split_command(argv: list[str]) -> tuple[str | None, Path | None]:
    """The command and the ``--project`` folder of a `harmonise` command line (None where absent)."""
    project, i = None, 0
    while i < len(argv):
        a = argv[i]
        if a == "--project" and i + 1 < len(argv):
            project, i = Path(argv[i + 1]), i + 2
        elif a.startswith("--project="):
            project, i = Path(a.split("=", 1)[1]), i + 1
        elif a.startswith("-"):
            i += 1
        else:
            return a, project
    return None, project


def ask(sock: Path, argv: list[str]) -> int | None:
    """Run ``argv`` on the server at ``sock``: its exit code, after printing its output; None if no server answers."""
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        return None
    try:
        client.connect(str(sock))
        client.sendall(json.dumps(request_of(argv)).encode() + b"\n")
        client.shutdown(socket.SHUT_WR)
        answer = _read_all(client)
    except OSError:
        return None
    finally:
        client.close()
    try:
        reply = json.loads(answer)
        out, err, code = str(reply["out"]), str(reply["err"]), int(reply["exit"])
    except (ValueError, KeyError, TypeError):
        return None
    sys.stdout.write(out)
    sys.stdout.flush()
    sys.stderr.write(err)
    sys.stderr.flush()
    return code


def _read_all(conn: socket.socket) -> bytes:
    parts: list[bytes] = []
    while True:
        b = conn.recv(1 << 16)
        if not b:
            return b"".join(parts)
        parts.append(b)


def request_of(argv: list[str]) -> dict[str, Any]:
    """The request that runs ``argv`` as this process would: its folder and harmonise's settings."""
    return {"argv": argv, "cwd": os.getcwd(),
            "env": {k: v for k, v in os.environ.items() if k.startswith("HARMONISE_") or k == "COLUMNS"}}


def start_server(sock: Path, root: Path, warm_up: list[str] | None = None) -> None:
    """Start a server for ``root`` in the background (it exits at once if one holds the socket's lock);
    it runs ``warm_up`` (a command's arguments, as from this folder) once before it listens."""
    replay = [json.dumps(request_of(warm_up))] if warm_up is not None else []
    with contextlib.suppress(OSError):
        subprocess.Popen([sys.executable, "-m", "harmonise.warm", str(sock), str(root), str(IDLE_SECONDS), *replay],
                         cwd=str(root),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)


def _leave_to_os() -> None:
    """At the command's exit, after the garbage no longer reachable is collected (its files and connections
    closed), move every object left out of the collector's reach: the interpreter's teardown then frees no
    cycle one by one, and the OS takes the memory back at once. A command that imported pandas, DuckDB,
    pyreadstat and pandera spent ~0.17 s in that teardown, ~0.08 s so (docs/decisions.md 56)."""
    import gc

    gc.collect()
    gc.freeze()


def entry() -> None:
    """The `harmonise` command: `validate` through a warm server when one answers, everything else here."""
    import atexit

    atexit.register(_leave_to_os)  # run after the handlers registered later (LIFO): the pools' joins first
    argv = sys.argv[1:]
    command, project = split_command(argv)
    start: tuple[Path, Path, list[str]] | None = None  # (socket, project, warm-up) of a server to start after the run
    if command in COMMANDS and enabled():
        root = (project or Path.cwd()).resolve()
        folder = _private_dir(create=True)
        if folder is not None and (root / "mappings" / "schema.yaml").is_file():
            sock = socket_path(folder, root, code_fingerprint())
            try:
                code = ask(sock, argv)
            except KeyboardInterrupt:  # the server finishes the request on its own; nothing is written
                sys.stderr.write("interrupted\n")
                sys.exit(130)
            if code is not None:
                sys.exit(code)
            start = (sock, root, argv)
    from harmonise.cli import main

    try:
        main(prog_name="harmonise")
    finally:
        if start is not None:
            start_server(*start)


def _run(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request's command in this process, its output captured."""
    from harmonise.cli import main
    argv = [str(a) for a in request.get("argv", [])]
    if split_command(argv)[0] not in COMMANDS:
        return {"out": "", "err": "this server only runs `harmonise validate`\n", "exit": 2}
    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    here = os.getcwd()
    code: int = 0
    try:
        os.chdir(str(request.get("cwd", here)))
        for k in [k for k in os.environ if k.startswith("HARMONISE_") or k == "COLUMNS"]:
            del os.environ[k]
        os.environ.update({str(k): str(v) for k, v in dict(request.get("env", {})).items()})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main.main(args=argv, prog_name="harmonise", standalone_mode=True)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OSError as exc:  # the client's folder is gone
        return {"out": "", "err": f"error: {exc}\n", "exit": 2}
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved_env)
    return {"out": out.getvalue(), "err": err.getvalue(), "exit": code}


def _die(signum: int, frame: object) -> None:
    """SIGTERM's default action (the process ends by the signal), kept by a handler of its own."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def serve(sock: Path, root: Path, idle: float = IDLE_SECONDS, warm_up: dict[str, Any] | None = None) -> None:
    """Answer requests on ``sock`` until ``idle`` seconds pass without one (one server per socket); run the
    request ``warm_up`` first, its reply discarded."""
    lock = open(f"{sock}.lock", "a")  # noqa: SIM115 - held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server holds this socket
    signal.signal(signal.SIGTERM, _die)  # a request's SIGTERM ends the server, not only the request (procs.terminable)
    import duckdb  # noqa: F401 - what makes a cold run slow, loaded once
    import pandas  # noqa: F401
    import pandera.pandas  # noqa: F401
    import pyreadstat  # noqa: F401

    import harmonise.api
    import harmonise.cli  # noqa: F401
    from harmonise.discover import remember_scans
    from harmonise.readers.prefetch import remember_frames

    remember_scans()  # the edit loop validates the same files again: their headers are read once,
    remember_frames()  # and small files' rows too (pandera's verdicts are kept per variable in every process)
    if warm_up is not None:
        with contextlib.suppress(Exception):  # only a warm-up: its reply, or failure, is not anyone's
            _run(warm_up)

    # bound and listening under a name of its own, then renamed into place: a client that sees the socket is
    # never refused (between bind and listen it was, and fell back to running the command itself)
    ready = sock.with_name(sock.name + ".t")
    with contextlib.suppress(FileNotFoundError):
        ready.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(ready))
    finally:
        os.umask(old)
    server.listen(8)
    os.replace(ready, sock)
    server.settimeout(idle)
    try:
        while (root / "mappings" / "schema.yaml").is_file():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            with conn:
                conn.settimeout(60)
                try:
                    raw = _read_all(conn)
                    request = json.loads(raw) if len(raw) <= _MAX_REQUEST else {}
                    reply = _run(request if isinstance(request, dict) else {})
                    conn.sendall(json.dumps(reply).encode())
                except (OSError, ValueError):
                    continue  # the client went away or sent garbage: it runs the command itself
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        lock.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else IDLE_SECONDS,
          json.loads(sys.argv[4]) if len(sys.argv) > 4 else None)
