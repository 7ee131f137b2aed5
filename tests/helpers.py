"""Small helpers shared by the cross-cutting tests: running the project's commands and servers."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0,
             not_yet: tuple[type[Exception], ...] = ()) -> None:
    """Polls ``check`` until it holds; fails naming ``what`` after ``timeout`` seconds.
    ``not_yet``: exceptions of ``check`` that mean "not yet" (a server still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(*not_yet):
            if check():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def run_cmd(args: list[str], env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = os.environ | (env or {})
    proc = subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(env: dict[str, str], app: str = "darkserver.asgi:application",
             workers: int = 1, args: tuple[str, ...] = (),
             log: Path | None = None) -> Iterator[str]:
    """The real web service under gunicorn on a free port, as conf/gunicorn.conf.py runs it
    (uvicorn's worker); yields its base URL. ``app="darkserver.wsgi"`` with
    ``DARKSERVER_WORKER_CLASS=gthread`` in ``env`` runs the WSGI setup instead. ``args``: more
    gunicorn options; ``log``: a file that gets the server's output."""
    port = free_port()
    output = open(log, "w") if log is not None else subprocess.PIPE  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "conf/gunicorn.conf.py", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", *args, app],
        env=os.environ | env, stdout=output, stderr=subprocess.STDOUT, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/v1/health", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    said = proc.stdout.read() if proc.stdout else log.read_text() if log else ""
                    raise AssertionError("gunicorn exited:\n" + said) from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if log is not None:
            output.close()  # type: ignore[union-attr]


def get_json(url: str, data: Any = None) -> tuple[int, Any]:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextlib.contextmanager
def live_app() -> Iterator[str]:
    """The Django app on a live HTTP thread sharing the test database; yields its base URL.

    pytest-django's live_server wraps the app in Django's static-files handler; this service
    serves no static files, so the app is served as it is. Needs a transactional test database.
    """
    from django.db import connections
    from django.test.testcases import LiveServerThread

    overrides = {c.alias: c for c in connections.all()
                 if c.vendor == "sqlite" and c.is_in_memory_db()}
    thread = LiveServerThread("127.0.0.1", lambda app: app, connections_override=overrides)
    thread.daemon = True
    for conn in overrides.values():
        conn.inc_thread_sharing()
    thread.start()
    thread.is_ready.wait()
    try:
        if thread.error:
            raise thread.error
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.terminate()
        # A request still being answered (a client's background lookup, say) closes its
        # connections when it ends: only while they are still shared may it do so.
        for request in [t for t in threading.enumerate() if "process_request" in t.name]:
            request.join(timeout=30)
        for conn in overrides.values():
            conn.dec_thread_sharing()


def elf_rows(queryset: Any = None) -> set[tuple[str, str, str]]:
    """(build-id hex, install path, package NVRA) of the stored ELF rows (of ``queryset``),
    the paths expanded as the service reads them (darkserver/lookup/paths.py)."""
    from darkserver.lookup import paths
    from darkserver.lookup.models import ElfFile

    rows = (ElfFile.objects.all() if queryset is None else queryset).values_list(
        "build_id", "path__path", "package__nvra")
    return {(bytes(b).hex(), paths.expand(p, bytes(b)), n) for b, p, n in rows}
