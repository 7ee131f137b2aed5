"""Which download URL really serves a package: mirror first, then Koji, then the archive.

Candidates come from the local per-distro templates (config) and from the server's match
``urls``. They are checked with HEAD requests on a thread pool, tier by tier: every package's
mirror candidates at once, then Koji for the packages still unresolved, then the archive, so a
run costs at most one check timeout per tier however many packages it has. A host that does
not answer (refused, reset, timed out) is remembered as dead for ``dead_host_ttl`` seconds, in
memory and in a small JSON file under the cache directory, and is not asked again meanwhile;
a 404 is an answer, not a dead host.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from darkclient.config import Config
from darkclient.httpsession import EnvOnceSession
from darkcore import urltemplates

# Order of the tiers; "package" is the URL the package was imported from (Koji or local).
KIND_RANK = {"mirror": 0, "koji": 1, "package": 1, "archive": 2}
DEBUG_SUFFIXES = ("-debuginfo", "-debugsource", "-dbgsym", "-dbg")
MAX_WORKERS = 16
# How long a check's answer is reused by a long-lived resolver (``darkclient serve``): a URL
# that failed may be there a minute later (a mirror syncing), one that answered rarely goes.
CHECK_OK_TTL = 3600.0
CHECK_FAILED_TTL = 60.0


def is_debug_package(package: dict[str, Any]) -> bool:
    return str(package.get("name", "")).endswith(DEBUG_SUFFIXES)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def template_context(package: dict[str, Any], build: dict[str, Any]) -> dict[str, str]:
    """The fields of a URL template (darkcore.urltemplates.FIELDS) for one match's package."""
    name = str(package.get("name") or "")
    epoch = package.get("epoch")
    return urltemplates.fields(urltemplates.Package(
        kind=str(package.get("kind") or ""), name=name,
        epoch=epoch if isinstance(epoch, int) else None,
        version=str(package.get("version") or ""), release=str(package.get("release") or ""),
        arch=str(package.get("arch") or ""), filename=str(package.get("filename") or ""),
        nvra=str(package.get("nvra") or ""), distro=str(build.get("distro") or ""),
        build_name=str(build.get("name") or name),
        build_version=str(build.get("version") or package.get("version") or ""),
        build_release=str(build.get("release") or package.get("release") or ""),
        instance=str(build.get("instance") or "")))


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: str
    url: str
    origin: str  # "config" or "server"


def candidates(match: dict[str, Any], cfg: Config) -> list[Candidate]:
    """Every candidate URL of a match's package, in the order to try them."""
    package = match.get("package") or {}
    build = match.get("build") or {}
    out: list[Candidate] = []
    filename = str(package.get("filename") or "")
    if filename and "/" not in filename:
        ctx = template_context(package, build)
        templates = cfg.templates_for(ctx["distro"])
        debug = is_debug_package(package)
        for kind in ("mirror", "koji", "archive"):
            chosen = templates.get(f"{kind}_debug") if debug else None
            for template in chosen if chosen is not None else templates.get(kind, []):
                with contextlib.suppress(urltemplates.TemplateError):
                    out.append(Candidate(kind, urltemplates.render(template, ctx), "config"))
    for item in match.get("urls") or []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            url = item["url"]
            if url.startswith(("http://", "https://")):
                out.append(Candidate(str(item.get("kind") or "package"), url, "server"))
    unique: dict[str, Candidate] = {}
    for c in out:
        unique.setdefault(c.url, c)
    # Stable: within a tier, local configuration before the server's suggestions.
    return sorted(unique.values(), key=lambda c: KIND_RANK.get(c.kind, 3))


class DeadHosts:
    """Hosts that did not answer, until an expiry time; persisted as {host: expiry epoch}."""

    def __init__(self, path: Path | None, ttl: float) -> None:
        self.path = path
        self.ttl = ttl
        self._lock = threading.Lock()
        self._dead: dict[str, float] = {}
        self._changed = False
        if path is not None:
            try:
                raw = json.loads(path.read_text())
                now = time.time()
                self._dead = {str(h): float(t) for h, t in raw.items() if float(t) > now}
            except (OSError, ValueError, AttributeError, TypeError):
                self._dead = {}

    def is_dead(self, host: str) -> bool:
        with self._lock:
            until = self._dead.get(host)
            return until is not None and until > time.time()

    def mark(self, host: str) -> None:
        with self._lock:
            self._dead[host] = time.time() + self.ttl
            self._changed = True

    def save(self) -> None:
        if self.path is None or not self._changed:
            return
        with self._lock:
            now = time.time()
            data = {h: t for h, t in self._dead.items() if t > now}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dead-hosts.")
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written is only a slower next run
        self._changed = False


@dataclass(slots=True)
class Check:
    url: str
    kind: str
    ok: bool
    status: int | None = None
    error: str = ""  # "host marked dead", "timed out", "connection refused", ...

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "ok": self.ok, "status": self.status,
                "error": self.error}


@dataclass(slots=True)
class Resolution:
    url: str | None
    kind: str | None
    checks: list[Check] = field(default_factory=list)


class Resolver:
    """Finds the first answering URL for many packages at once, one HEAD per distinct URL."""

    def __init__(self, cfg: Config, session: requests.Session | None = None,
                 dead_hosts: DeadHosts | None = None) -> None:
        self.cfg = cfg
        self.session = session or make_session()
        self.dead = dead_hosts or DeadHosts(cfg.cache_dir / "dead-hosts.json", cfg.dead_host_ttl)
        self._results: dict[str, tuple[float, Check]] = {}  # url -> (expiry, check)

    def _known(self, url: str, now: float) -> Check | None:
        got = self._results.get(url)
        return got[1] if got is not None and got[0] > now else None

    def check(self, url: str, kind: str) -> Check:
        host = host_of(url)
        if self.dead.is_dead(host):
            return Check(url, kind, False, None, "host marked dead (not asked)")
        timeout = self.cfg.check_timeout
        try:
            resp = self.session.head(url, timeout=(timeout, timeout), allow_redirects=True)
            if resp.status_code in (405, 501):  # a server without HEAD: ask for one byte
                resp = self.session.get(url, timeout=(timeout, timeout), stream=True,
                                        headers={"Range": "bytes=0-0"}, allow_redirects=True)
                resp.close()
        except requests.exceptions.Timeout:
            self.dead.mark(host)
            return Check(url, kind, False, None, f"no answer within {timeout:g} s")
        except requests.exceptions.ConnectionError as exc:
            self.dead.mark(host)
            reason = "connection refused" if "refused" in str(exc).lower() else "connection failed"
            return Check(url, kind, False, None, reason)
        except requests.exceptions.RequestException as exc:
            return Check(url, kind, False, None, type(exc).__name__)
        ok = 200 <= resp.status_code < 300
        return Check(url, kind, ok, resp.status_code, "" if ok else f"HTTP {resp.status_code}")

    def resolve_many(self, lists: Iterable[list[Candidate]]) -> list[Resolution]:
        """For each candidate list, the first candidate (in order) that answered 2xx."""
        todo = [list(c) for c in lists]
        out = [Resolution(None, None) for _ in todo]
        ranks = sorted({KIND_RANK.get(c.kind, 3) for cl in todo for c in cl})
        now = time.time()
        with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
            for rank in ranks:
                open_ = [i for i, r in enumerate(out) if r.url is None]
                wanted = {c.url: c.kind for i in open_ for c in todo[i]
                          if KIND_RANK.get(c.kind, 3) == rank and not self._known(c.url, now)}
                answered: dict[str, Check] = {}
                for check in pool.map(lambda kv: self.check(*kv), list(wanted.items())):
                    answered[check.url] = check
                    ttl = CHECK_OK_TTL if check.ok else CHECK_FAILED_TTL
                    self._results[check.url] = (time.time() + ttl, check)
                for i in open_:
                    for c in todo[i]:
                        if KIND_RANK.get(c.kind, 3) != rank:
                            continue
                        check = answered.get(c.url) or self._results[c.url][1]
                        out[i].checks.append(check)
                        if check.ok:
                            out[i].url, out[i].kind = c.url, c.kind
                            break
        self.dead.save()
        return out


def make_session() -> requests.Session:
    session = EnvOnceSession()
    adapter = requests.adapters.HTTPAdapter(pool_connections=MAX_WORKERS,
                                            pool_maxsize=MAX_WORKERS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "darkclient/1"
    # Proxies from the environment are honoured; .netrc credentials are not sent anywhere:
    # requests adds them only when a session has no auth of its own, and the kept connections
    # (httpsession.py) never do, so both ways to a mirror behave the same.
    session.trust_env = True
    session.auth = _no_credentials
    return session


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request
