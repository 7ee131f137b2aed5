"""URL resolution: mirror, then Koji, then archive; HEAD checks; the dead-host cache."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from darkclient import config as configmod
from darkclient import urls
from darkclient.errors import ConfigError
from darkclient.urls import DeadHosts, Resolver, candidates, template_context
from tests.darkclient.conftest import FileServer, serving, write_conf

TREE = "{releasever}/Everything/{basearch}/Packages/{first}/{filename}"


def match(name: str = "crashy", server_urls: list[dict[str, str]] | None = None) -> dict[str, Any]:
    nvra = f"{name}-1.0-1.fc40.x86_64"
    return {
        "buildid": "ab" * 20, "path": f"/usr/bin/{name}", "debug": False,
        "package": {"nvra": nvra, "kind": "rpm", "name": name, "epoch": None, "version": "1.0",
                    "release": "1.fc40", "arch": "x86_64", "filename": f"{nvra}.rpm",
                    "size": 3, "sha256": "", "sigmd5": "", "koji_rpm_id": None},
        "build": {"name": "crashy", "epoch": None, "version": "1.0", "release": "1.fc40",
                  "distro": "fc40", "instance": "primary", "koji_build_id": 1},
        "urls": server_urls or [],
    }


def put(server: FileServer, rel: str) -> str:
    path = server.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"rpm")
    return f"{server.url}/{rel}"


def conf(client_env: Path, tmp_path: Path, **templates: list[str]) -> configmod.Config:
    write_conf(client_env, tmp_path / "cache", templates, check_timeout=1.0)
    return configmod.load()


def test_default_fedora_templates() -> None:
    cfg = configmod.Config()
    got = [(c.kind, c.url) for c in candidates(match(), cfg)]
    f = "crashy-1.0-1.fc40.x86_64.rpm"
    assert got == [
        ("mirror", "https://dl.fedoraproject.org/pub/fedora/linux/updates/40/Everything/"
                   f"x86_64/Packages/c/{f}"),
        ("mirror", "https://dl.fedoraproject.org/pub/fedora/linux/releases/40/Everything/"
                   f"x86_64/os/Packages/c/{f}"),
        ("koji", f"https://kojipkgs.fedoraproject.org/packages/crashy/1.0/1.fc40/x86_64/{f}"),
        ("archive", "https://archives.fedoraproject.org/pub/archive/fedora/linux/updates/40/"
                    f"Everything/x86_64/Packages/c/{f}"),
        ("archive", "https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/40/"
                    f"Everything/x86_64/os/Packages/c/{f}"),
    ]
    debug = candidates(match("crashy-debuginfo"), cfg)
    assert debug[0].url.endswith("/updates/40/Everything/x86_64/debug/Packages/c/"
                                 "crashy-debuginfo-1.0-1.fc40.x86_64.rpm")
    # Koji directories are named after the build (source package), not the rpm.
    assert [c.url for c in debug if c.kind == "koji"] == [
        "https://kojipkgs.fedoraproject.org/packages/crashy/1.0/1.fc40/x86_64/"
        "crashy-debuginfo-1.0-1.fc40.x86_64.rpm"]
    ctx = template_context(match()["package"], match()["build"])
    assert (ctx["releasever"], ctx["first"], ctx["build_name"]) == ("40", "c", "crashy")


def test_server_urls_join_the_tiers(client_env: Path, tmp_path: Path) -> None:
    cfg = conf(client_env, tmp_path, mirror=["http://m/{filename}"],
               archive=["http://a/{filename}"])
    m = match(server_urls=[{"kind": "archive", "url": "http://a2/x.rpm"},
                           {"kind": "koji", "url": "http://k/x.rpm"},
                           {"kind": "mirror", "url": "http://m2/x.rpm"},
                           {"kind": "koji", "url": "file:///etc/passwd"}])
    assert [(c.kind, c.url) for c in candidates(m, cfg)] == [
        ("mirror", "http://m/crashy-1.0-1.fc40.x86_64.rpm"), ("mirror", "http://m2/x.rpm"),
        ("koji", "http://k/x.rpm"),
        ("archive", "http://a/crashy-1.0-1.fc40.x86_64.rpm"), ("archive", "http://a2/x.rpm"),
    ]


def test_bad_template_is_a_config_error(client_env: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bad URL template"):
        conf(client_env, tmp_path, mirror=["http://m/{nonsense}"])


def test_archive_when_mirror_and_koji_miss(client_env: Path, tmp_path: Path, mirror: FileServer,
                                          koji: FileServer, archive: FileServer) -> None:
    cfg = conf(client_env, tmp_path, mirror=[f"{mirror.url}/{TREE}"],
               koji=[f"{koji.url}/packages/{{build_name}}/{{filename}}"],
               archive=[f"{archive.url}/{TREE}"])
    old = put(archive, "40/Everything/x86_64/Packages/c/crashy-1.0-1.fc40.x86_64.rpm")
    [res] = Resolver(cfg).resolve_many([candidates(match(), cfg)])
    assert (res.url, res.kind) == (old, "archive")
    assert [(c.kind, c.status) for c in res.checks] == [
        ("mirror", 404), ("koji", 404), ("archive", 200)]
    assert [r[0] for r in mirror.requests + koji.requests + archive.requests] == ["HEAD"] * 3


def test_mirror_wins_and_later_tiers_are_not_asked(client_env: Path, tmp_path: Path,
                                                   mirror: FileServer,
                                                   koji: FileServer) -> None:
    cfg = conf(client_env, tmp_path, mirror=[f"{mirror.url}/{TREE}"],
               koji=[f"{koji.url}/{{filename}}"])
    url = put(mirror, "40/Everything/x86_64/Packages/c/crashy-1.0-1.fc40.x86_64.rpm")
    put(koji, "crashy-1.0-1.fc40.x86_64.rpm")
    [res] = Resolver(cfg).resolve_many([candidates(match(), cfg)])
    assert res.url == url
    assert koji.requests == []


def test_dead_and_hanging_hosts_are_remembered(client_env: Path, tmp_path: Path, dead_url: str,
                                               hanging: str, koji: FileServer) -> None:
    cfg = conf(client_env, tmp_path, mirror=[f"{dead_url}/{{filename}}"],
               koji=[f"{hanging}/{{filename}}"], archive=[f"{koji.url}/{{filename}}"])
    good = put(koji, "crashy-1.0-1.fc40.x86_64.rpm")
    put(koji, "other-1.0-1.fc40.x86_64.rpm")
    t0 = time.monotonic()
    res = Resolver(cfg).resolve_many([candidates(match(), cfg)])
    assert time.monotonic() - t0 < 5  # one 1 s check timeout per tier at most
    assert res[0].url == good
    assert [(c.kind, c.error) for c in res[0].checks] == [
        ("mirror", "connection refused"), ("koji", "no answer within 1 s"), ("archive", "")]
    saved = json.loads((tmp_path / "cache" / "dead-hosts.json").read_text())
    assert set(saved) == {dead_url, hanging}
    assert all(t > time.time() + 500 for t in saved.values())  # default TTL 600 s
    # A new run (a new process would read the same file) does not ask them again.
    t0 = time.monotonic()
    res = Resolver(cfg).resolve_many([candidates(match("other"), cfg)])
    assert time.monotonic() - t0 < 1
    assert [c.error for c in res[0].checks] == ["host marked dead (not asked)"] * 2 + [""]


def test_dead_host_entries_expire(tmp_path: Path) -> None:
    path = tmp_path / "dead.json"
    path.write_text(json.dumps({"http://old": time.time() - 1, "http://new": time.time() + 60}))
    dead = DeadHosts(path, ttl=60)
    assert not dead.is_dead("http://old") and dead.is_dead("http://new")
    path.write_text("not json")
    assert not DeadHosts(path, ttl=60).is_dead("http://new")  # a broken cache is no cache


def test_one_check_per_distinct_url(client_env: Path, tmp_path: Path, mirror: FileServer) -> None:
    cfg = conf(client_env, tmp_path, mirror=[f"{mirror.url}/{{filename}}"])
    put(mirror, "crashy-1.0-1.fc40.x86_64.rpm")
    lists = [candidates(match(), cfg) for _ in range(20)]
    res = Resolver(cfg).resolve_many(lists)
    assert all(r.url == f"{mirror.url}/crashy-1.0-1.fc40.x86_64.rpm" for r in res)
    assert len(mirror.requests) == 1


def test_failed_checks_expire_sooner(client_env: Path, tmp_path: Path, mirror: FileServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived resolver (serve) asks again about a URL that failed once its answer
    expired, and reuses one that answered for longer."""
    assert urls.CHECK_FAILED_TTL == 60 and urls.CHECK_OK_TTL == 3600
    cfg = conf(client_env, tmp_path, mirror=[f"{mirror.url}/{{filename}}"])
    resolver = Resolver(cfg)
    monkeypatch.setattr(urls, "CHECK_FAILED_TTL", 0.0)  # expired as soon as it is stored
    [res] = resolver.resolve_many([candidates(match(), cfg)])
    assert res.url is None and [c.status for c in res.checks] == [404]
    url = put(mirror, "crashy-1.0-1.fc40.x86_64.rpm")  # the mirror has synced
    for _ in range(2):
        [res] = resolver.resolve_many([candidates(match(), cfg)])
        assert res.url == url
    assert [r[0] for r in mirror.requests] == ["HEAD", "HEAD"]  # the third answer was reused


def test_netrc_credentials_are_not_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~/.netrc entry for the mirror's host sends no Authorization header, over requests
    (HEAD checks, https, proxies) as over the kept plain connections (httpsession.py)."""
    import http.server

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    with serving(Handler) as base, urls.make_session() as session:
        url = f"{base}/pkg.rpm"
        assert session.head(url, timeout=10).status_code == 200
        assert session.get(url, timeout=10).content == b"ok"
        assert session.small("GET", url, timeout=10).content == b"ok"
    assert len(seen) == 3 and seen == [None, None, None]
