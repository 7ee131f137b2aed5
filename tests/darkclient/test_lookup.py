"""serve's single lookup against the real server, and the session's environment handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from darkclient.errors import ServerError
from darkclient.lookup import lookup, lookup_one
from darkclient.urls import make_session
from tests.darkclient.conftest import Program


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
