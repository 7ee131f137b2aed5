"""The three hot answers (answers.py) put together from per-build-id JSON fragments, byte for
byte what answers.py and jsonout.dumps give: what the answer cache (answercache.py) holds.

Two kinds of fragment, each keyed by kind + normalised build-id:

* MATCHES (``m<id>``): the JSON list of the id's match objects, as in ``"matches"`` of
  GET /api/v1/buildid/<id> and in ``"results"`` of the batch; ``b""`` when the id matched
  nothing (a 404, or an entry of ``"missing"``).
* COMPAT (``c<id>``): the id's objects of GET /buildids/<ids>, comma-separated without the
  brackets; ``b""`` when it matched nothing.

Kept fragments are slices or copies, never orjson's own bytes objects (see _matches).

orjson writes compact JSON with no context: a value's bytes are the same alone or inside a
document, so the answer is its fixed parts around the fragments. What orjson refuses
(jsonout.py: a 65-bit integer in a package note, a lone surrogate) makes the whole document go
through the standard library, ASCII-escaped, which no fragment can stand for: ``make`` then
returns None and the caller answers through answers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from darkserver.lookup import metrics, serialize
from darkserver.lookup.answers import NOT_FOUND_SEARCHED, Answer
from darkserver.lookup.errors import ERROR_HEADERS, error_doc
from darkserver.lookup.jsonout import dumps, dumps_orjson

Row = dict[str, Any]


def _matches(rows: list[Row], shared: serialize.Matches) -> bytes | None:
    if not rows:
        return b""
    found = dumps_orjson([shared.match(row) for row in rows])
    # A copy of exact size: orjson's bytes keep the buffer they were written in (~8 KiB for a
    # 1.5 KiB answer), which the cache would hold on to, five times the size it counts.
    return None if found is None else bytes(memoryview(found))


def _compat(rows: list[Row], shared: serialize.Matches) -> bytes | None:
    if not rows:
        return b""
    found = dumps_orjson(serialize.compat(rows))
    return None if found is None else found[1:-1]


def _single(ids: Sequence[str], fragments: Sequence[bytes]) -> Answer:
    (buildid,), (fragment,) = ids, fragments
    metrics.lookup("single", 1, 0 if fragment else 1)
    if not fragment:
        doc = error_doc(404, "build-id not found", buildid=buildid, searched=NOT_FOUND_SEARCHED)
        return 404, dumps(doc), ERROR_HEADERS
    return 200, b'{"buildid":"%s","matches":%s}' % (buildid.encode(), fragment), ()


def _compat_answer(ids: Sequence[str], fragments: Sequence[bytes]) -> Answer:
    # ids as asked, repeats included (answers.compat_buildids repeats their rows too).
    metrics.lookup("compat", len(ids), sum(1 for f in fragments if not f))
    return 200, b"[%s]" % b",".join(f for f in fragments if f), ()


def _batch(ids: Sequence[str], fragments: Sequence[bytes]) -> Answer:
    # ids normalised and distinct (answers.batch_ids). orjson copies each Fragment's bytes as
    # they are: half the time of joining them in Python for 1,000 ids.
    missing = [i for i, f in zip(ids, fragments, strict=True) if not f]
    metrics.BATCH_SIZE.observe(len(ids))
    metrics.lookup("batch", len(ids), len(missing))
    results = {i: orjson.Fragment(f) for i, f in zip(ids, fragments, strict=True) if f}
    return 200, orjson.dumps({"results": results, "missing": missing}), ()


def _cut_single(buildid: str, status: int, body: bytes) -> bytes | None:
    if status == 404:
        return b""
    head = b'{"buildid":"%s","matches":' % buildid.encode()
    return body[len(head):-1] if status == 200 and body.startswith(head) else None


def _cut_compat(buildid: str, status: int, body: bytes) -> bytes | None:
    return body[1:-1] if status == 200 else None


def _cut_nothing(buildid: str, status: int, body: bytes) -> bytes | None:
    return None


@dataclass(frozen=True, slots=True)
class Form:
    """How one hot route's answer is made of fragments."""

    kind: str  # the key prefix: "m" (MATCHES) or "c" (COMPAT)
    # One id's sorted rows (queries.by_build_ids) -> its fragment, or None (orjson refuses).
    make: Callable[[list[Row], serialize.Matches], bytes | None]
    # The request's ids and their fragments -> status, body, extra headers; counts metrics
    # as answers.py does.
    assemble: Callable[[Sequence[str], Sequence[bytes]], Answer]
    # The fragment of a one-id answer made by answers.py and encoded by orjson (status, body),
    # or None: a lookup that missed is answered as without the cache, and what it keeps costs
    # a slice (the batch's answers are never of one id: its fragments are made).
    cut: Callable[[str, int, bytes], bytes | None] = _cut_nothing

    def key(self, buildid: str) -> str:
        return self.kind + buildid


SINGLE = Form("m", _matches, _single, _cut_single)
BATCH = Form("m", _matches, _batch)
COMPAT = Form("c", _compat, _compat_answer, _cut_compat)
