"""Which package holds a build's sources, and where its files go.

The server answers ``GET /api/v1/buildid/ID/sources`` with the source-bearing packages of the
builds that contain the id (Fedora: ``NAME-debugsource``, files under
``/usr/src/debug/NAME-V-R.ARCH/``, the directory debugedit wrote into the DWARF). Debian
builds list none: their sources are the source package's tarballs, not installable files.
"""

from __future__ import annotations

from typing import Any

import requests

from darkclient.errors import ServerError
from darkclient.httpsession import EnvOnceSession
from darkclient.lookup import USER_AGENT

SOURCE_ROOT = "/usr/src/debug/"

Doc = dict[str, Any]


def source_docs(session: requests.Session, server: str, build_id: str,
                timeout: float) -> list[Doc]:
    """The server's source packages for ``build_id`` ([] when the id is unknown or its
    builds have none); ServerError when the server cannot be asked."""
    url = f"{server.rstrip('/')}/api/v1/buildid/{build_id}/sources"
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        if isinstance(session, EnvOnceSession):
            resp = session.small("GET", url, timeout, headers=headers)
        else:
            resp = session.get(url, timeout=(timeout, timeout), allow_redirects=False,
                               headers=headers)
    except requests.exceptions.RequestException as exc:
        raise ServerError(f"cannot ask Darkserver at {url}: {type(exc).__name__}") from None
    if resp.status_code == 404:
        return []
    if resp.status_code != 200:
        raise ServerError(f"Darkserver at {url} answered HTTP {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError:
        raise ServerError(f"Darkserver at {url} answered something that is not JSON") from None
    found = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(found, list):
        raise ServerError(f"Darkserver at {url} answered JSON without \"sources\"")
    return [d for d in found if isinstance(d, dict) and isinstance(d.get("package"), dict)]


def pick_source(docs: list[Doc], arch: str) -> Doc | None:
    """The source package of the same architecture as the module (sources differ per arch
    only by generated files, but the paths in the DWARF name the arch), else the first."""
    for doc in docs:
        if doc["package"].get("arch") == arch:
            return doc
    return docs[0] if docs else None
