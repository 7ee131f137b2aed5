"""The one request a run sends: POST /api/v1/buildids with the build-ids and nothing else.

No path, host name or core content ever goes into the request; ``Request`` is built from
build-ids only, and ``--dry-run`` prints that same object instead of sending it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests

from darkclient.errors import ClientError, ServerError
from darkclient.httpsession import EnvOnceSession
from darkcore import buildid

BATCH_PATH = "/api/v1/buildids"
MAX_BATCH = 10000  # the server's documented maximum (docs/API.md)
USER_AGENT = "darkclient/1"

Match = dict[str, Any]


def normalise_buildid(text: str) -> str:
    """The canonical form of a build-id typed by a person (surrounding blanks and a ``0x``
    prefix are forgiven), by the server's own rule (darkcore.buildid); ClientError otherwise."""
    value = text.strip()
    if value[:2].lower() == "0x":
        value = value[2:]
    try:
        return buildid.normalize_build_id(value)
    except buildid.BadBuildId as exc:
        raise ClientError(f"not a build-id: {text!r} ({exc.rule})") from None


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    body: bytes  # the exact JSON bytes sent

    def describe(self) -> str:
        return f"{self.method} {self.url}\nContent-Type: application/json\n\n{self.body.decode()}"


@dataclass(slots=True)
class LookupResult:
    results: dict[str, list[Match]]
    missing: list[str]


def batch_requests(server: str, buildids: list[str]) -> list[Request]:
    """The request(s) for these ids: one unless there are more than the server's maximum."""
    unique = list(dict.fromkeys(buildids))
    for value in unique:  # one bad id would make the server reject the whole batch
        if not buildid.is_build_id(value) or value != value.lower():
            raise ClientError(f"refusing to send {value!r}: {buildid.RULE}, lower case")
    url = server.rstrip("/") + BATCH_PATH
    chunks = [unique[i:i + MAX_BATCH] for i in range(0, len(unique), MAX_BATCH)] or [[]]
    return [Request("POST", url, json.dumps({"buildids": chunk}).encode()) for chunk in chunks]


def _error_text(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return ""


def _ask(session: requests.Session, method: str, url: str, timeout: float,
         body: bytes | None = None) -> requests.Response:
    """The Darkserver's response; ServerError with a one-line message when there is none."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        if isinstance(session, EnvOnceSession):
            return session.small(method, url, timeout, body, headers)
        return session.request(method, url, data=body, timeout=(timeout, timeout),
                               headers=headers, allow_redirects=False)
    except requests.exceptions.ConnectTimeout:
        raise ServerError(f"Darkserver at {url} did not accept a connection "
                          f"within {timeout:g} s") from None
    except requests.exceptions.ReadTimeout:
        raise ServerError(f"Darkserver at {url} did not answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "connection failed"
        raise ServerError(f"cannot reach Darkserver at {url}: {reason}") from None
    except requests.exceptions.RequestException as exc:
        raise ServerError(f"request to Darkserver at {url} failed: "
                          f"{type(exc).__name__}") from None


def _failed(resp: requests.Response, where: str) -> ServerError:
    message = _error_text(resp)
    kind = "rejected the request" if 400 <= resp.status_code < 500 else "failed"
    detail = f": {message}" if message else ""
    return ServerError(f"Darkserver at {where} {kind} (HTTP {resp.status_code}){detail}")


def _json(resp: requests.Response, where: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        ctype = resp.headers.get("Content-Type", "no content type")
        raise ServerError(f"Darkserver at {where} answered with something that is not JSON "
                          f"({ctype}); is this the right URL?") from None


def _unknown(resp: requests.Response, build_id: str) -> bool:
    """A 404 that is the documented "build-id not found" (it echoes the id), not a wrong URL."""
    try:
        doc = resp.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("buildid") == build_id


def send(session: requests.Session, req: Request, timeout: float) -> LookupResult:
    """Send one batch request; ServerError with a one-line message on any failure."""
    where = req.url
    resp = _ask(session, req.method, req.url, timeout, req.body)
    if resp.status_code != 200:
        raise _failed(resp, where)
    doc = _json(resp, where)
    if (not isinstance(doc, dict) or not isinstance(doc.get("results"), dict)
            or not isinstance(doc.get("missing"), list)):
        raise ServerError(f"Darkserver at {where} answered JSON without "
                          "\"results\" and \"missing\"; is this a Darkserver?")
    results: dict[str, list[Match]] = {}
    for key, matches in doc["results"].items():
        if isinstance(matches, list):
            results[str(key).lower()] = [m for m in matches if isinstance(m, dict)]
    return LookupResult(results, [str(x).lower() for x in doc["missing"]])


def lookup(session: requests.Session, server: str, buildids: list[str],
           timeout: float) -> LookupResult:
    total = LookupResult({}, [])
    for req in batch_requests(server, buildids):
        part = send(session, req, timeout)
        total.results.update(part.results)
        total.missing.extend(part.missing)
    return total


def lookup_one(session: requests.Session, server: str, build_id: str,
               timeout: float) -> list[Match]:
    """The matches of one build-id ([] when unknown) by ``GET /api/v1/buildid/ID``: the
    server answers it on its event loop, where a batch (even of one) goes to a thread, and
    the request has no body to encode; ~0.2 ms less per lookup, which ``darkclient serve``
    pays once per module a debugger asks for, in turn."""
    if not buildid.is_build_id(build_id) or build_id != build_id.lower():
        raise ClientError(f"refusing to send {build_id!r}: {buildid.RULE}, lower case")
    where = f"{server.rstrip('/')}/api/v1/buildid/{build_id}"
    resp = _ask(session, "GET", where, timeout)
    if resp.status_code == 404 and _unknown(resp, build_id):
        return []
    if resp.status_code != 200:
        raise _failed(resp, where)
    doc = _json(resp, where)
    matches = doc.get("matches") if isinstance(doc, dict) else None
    if not isinstance(matches, list):
        raise ServerError(f"Darkserver at {where} answered JSON without \"matches\"; "
                          "is this a Darkserver?")
    return [m for m in matches if isinstance(m, dict)]
