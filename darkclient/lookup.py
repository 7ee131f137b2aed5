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


def send(session: requests.Session, req: Request, timeout: float) -> LookupResult:
    """Send one batch request; ServerError with a one-line message on any failure."""
    where = req.url
    try:
        resp = session.request(
            req.method, req.url, data=req.body, timeout=(timeout, timeout),
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "User-Agent": USER_AGENT},
            allow_redirects=False)
    except requests.exceptions.ConnectTimeout:
        raise ServerError(f"Darkserver at {where} did not accept a connection "
                          f"within {timeout:g} s") from None
    except requests.exceptions.ReadTimeout:
        raise ServerError(f"Darkserver at {where} did not answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "connection failed"
        raise ServerError(f"cannot reach Darkserver at {where}: {reason}") from None
    except requests.exceptions.RequestException as exc:
        raise ServerError(f"request to Darkserver at {where} failed: "
                          f"{type(exc).__name__}") from None
    if resp.status_code != 200:
        message = _error_text(resp)
        kind = "rejected the request" if 400 <= resp.status_code < 500 else "failed"
        detail = f": {message}" if message else ""
        raise ServerError(f"Darkserver at {where} {kind} (HTTP {resp.status_code}){detail}")
    try:
        doc = resp.json()
    except ValueError:
        ctype = resp.headers.get("Content-Type", "no content type")
        raise ServerError(f"Darkserver at {where} answered with something that is not JSON "
                          f"({ctype}); is this the right URL?") from None
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
