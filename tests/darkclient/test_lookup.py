"""serve's single lookup against the real server, and the session's environment handling."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests

from darkclient.download import download_spooled
from darkclient.errors import DownloadError, ServerError
from darkclient.lookup import lookup, lookup_one
from darkclient.urls import make_session
from tests.darkclient.conftest import Program, serving


def test_lookup_one_is_the_batchs_answer(darkserver: str, client_env: Path,
                                         crashy_rows: dict[str, Any], program: Program) -> None:
    """``lookup_one`` (GET /api/v1/buildid/ID, serve's lookup) gives the matches the batch
    gives; an unknown id is [], a URL that is not a Darkserver an error."""
    with make_session() as session:
        one = lookup_one(session, darkserver, program.main_id, 10)
        assert one and one == lookup(session, darkserver, [program.main_id], 10).results[
            program.main_id]
        assert lookup_one(session, darkserver, program.liba_id, 10) == []
        with pytest.raises(ServerError, match="HTTP 404"):
            lookup_one(session, darkserver + "/elsewhere", program.main_id, 10)


def test_session_reads_proxies_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment's proxies apply as requests applies them (no_proxy included), and are
    worked out once per host: a later change of the environment is not seen."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with make_session() as session:
        def proxies(url: str) -> dict[str, str]:
            return dict(session.merge_environment_settings(url, {}, None, None, None)["proxies"])

        assert proxies("http://mirror.example/a.rpm").get("http") == "http://proxy.invalid:3128"
        assert "http" not in proxies("http://127.0.0.1:8080/a.rpm")
        monkeypatch.setenv("HTTP_PROXY", "http://other.invalid:1")
        assert proxies("http://mirror.example/b.rpm").get("http") == "http://proxy.invalid:3128"
        assert proxies("http://new.example/").get("http") == "http://other.invalid:1"


class _Counting(BaseHTTPRequestHandler):
    """Answers {"n": N} over HTTP/1.1 keep-alive, counting connections; after a request for
    /drop it closes the connection without saying so (a server's keep-alive timeout); /moved
    redirects to /x; /cut ends its body early."""

    protocol_version = "HTTP/1.1"
    connections: list[int] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/cut":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            return
        body = json.dumps({"n": len(self.connections)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/drop":
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def counting() -> Iterator[str]:
    _Counting.connections = []
    with serving(_Counting) as url:
        yield url


def test_small_requests_keep_their_connection(counting: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Small requests to an http:// server without a proxy go over one kept connection; one
    the server closed meanwhile is replaced without an error; a proxy, when one applies, is
    used (here a dead one: the request fails instead of going around it)."""
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    with make_session() as session:
        answers = [session.small("GET", f"{counting}/x", 5).json()["n"] for _ in range(3)]
        # Another thread (serve answers each request on one of its own) takes the idle one.
        other: list[int] = []
        t = threading.Thread(target=lambda: other.append(
            session.small("GET", f"{counting}/x", 5).json()["n"]))
        t.start()
        t.join()
        assert answers + other == [1, 1, 1, 1]
        assert session.small("GET", f"{counting}/drop", 5).status_code == 200
        assert session.small("GET", f"{counting}/x", 5).json()["n"] == 2  # a new connection
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    with make_session() as session, pytest.raises(requests.exceptions.ProxyError):
        session.small("GET", f"{counting}/x", 5)


def test_downloads_keep_their_connection(counting: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Packages stream over the kept connection too (one connection for several), a redirect
    is followed, and a body cut short is a DownloadError that says so, after which the next
    download has a connection of its own."""
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    with make_session() as session:
        for _ in range(3):
            with download_spooled(session, f"{counting}/x", {}, 5) as f:
                assert json.loads(f.read()) == {"n": 1}
        with download_spooled(session, f"{counting}/moved", {}, 5) as f:
            assert "n" in json.loads(f.read())
        with pytest.raises(DownloadError, match="got 10 bytes, expected 1000"):
            download_spooled(session, f"{counting}/cut", {"size": 1000}, 5)
        before = len(_Counting.connections)
        with download_spooled(session, f"{counting}/x", {}, 5) as f:
            assert json.loads(f.read()) == {"n": before + 1}
