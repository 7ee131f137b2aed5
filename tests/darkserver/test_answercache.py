"""The fast path's answer cache (lookup/answercache.py, answers put together by fragments.py):
a cached answer is byte for byte Django's (which never caches), and a change in the database
shows once the generation was read again, CHECK_SECONDS later at most.

The app tests run the fast path with a cache and compare every answer with Django's ASGI
handler over the same committed rows (test_fastpath_asgi.py's helpers); the clock of the
cache and of the connections' package caches is a fake one where the bound is the subject.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import tracemalloc
from typing import Any

import pytest

from darkimport.run import store
from darkserver.lookup import answercache, counters, fragments, pkgcache
from darkserver.lookup.answercache import AnswerCache
from darkserver.lookup.fastpath_asgi import AsgiFastPath
from darkserver.lookup.models import Package
from tests.darkserver import test_fastpath_asgi
from tests.darkserver.conftest import APR_ID, make_elf, make_package
from tests.darkserver.test_fastpath_asgi import (
    MISSING,
    SERVED,
    Answer,
    _cached_app,
    _call,
    _count,
    _scan,
    batch_body,
    both,
    call,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The fast path's fixtures, with the cache_bytes below.
apps = test_fastpath_asgi.apps
apr_committed = test_fastpath_asgi.apr_committed
many_packages = test_fastpath_asgi.many_packages

CACHE = 1 << 20
NEW = "42" * 20  # the build-id of test_fastpath_asgi._scan()'s package


@pytest.fixture
def cache_bytes() -> int:
    return CACHE


def _hits() -> float:
    return _count("darkserver_answer_cache_buildids_total", result="hit")


def _twice(apps: tuple[Any, AsgiFastPath, Any], method: str, path: str,
           body: bytes | None = None) -> Answer:
    """The request made twice, each answer equal to Django's; the second from the cache."""
    _django, fast, spy = apps
    first, served = both(apps, method, path, body)
    assert served
    flushes, hits = fast.coalescer.flushes, _hits()
    second, served = both(apps, method, path, body)
    assert served and spy.calls == 0
    assert fast.coalescer.flushes == flushes  # no query: the cache answered
    assert _hits() > hits or body == batch_body([])  # (an empty batch has no id to hit)
    assert (second.status, second.headers, second.body) == (first.status, first.headers,
                                                            first.body)
    return second


@pytest.mark.parametrize(("method", "path"), SERVED, ids=[f"{m} {p}" for m, p in SERVED])
def test_cached_answers_are_the_uncached_bytes(apps, apr_committed, method, path):
    _twice(apps, method, path)


@pytest.mark.parametrize("ids", [
    [APR_ID, MISSING],
    [APR_ID.upper(), APR_ID, MISSING, MISSING],
    [MISSING],
    [],
], ids=["hit-and-miss", "duplicates", "missing", "empty"])
def test_cached_batches_are_the_uncached_bytes(apps, apr_committed, ids):
    _twice(apps, "POST", "/api/v1/buildids", batch_body(ids))


def test_every_route_answers_from_the_fragments_the_others_left(apps, apr_committed):
    """One id through every route, in turn and again: the routes share the MATCHES fragment
    (and the compat one is its own), and every answer stays Django's."""
    requests = [
        ("GET", f"/api/v1/buildid/{APR_ID}", None),
        ("POST", "/api/v1/buildids", batch_body([MISSING, APR_ID])),
        ("GET", f"/buildids/{APR_ID},{MISSING},{APR_ID.upper()}", None),
        ("GET", f"/api/v1/buildid/{MISSING}", None),
        ("GET", f"/buildids/{MISSING}", None),
    ]
    for _round in range(2):
        for method, path, body in requests:
            _answer, served = both(apps, method, path, body)
            assert served
    _django, fast, _spy = apps
    assert len(fast.answers) == 4  # APR_ID and MISSING, each as matches and as compat


def test_a_batch_reads_only_the_ids_not_cached(apps, many_packages, settings):
    """Rows of one id in several packages, packages shared between ids: half the batch warmed
    by single lookups and a smaller batch, then the whole batch (split in two halves)."""
    settings.DARKSERVER_MAX_BATCH = 1000
    _django, fast, _spy = apps
    for buildid in many_packages[:20]:
        both(apps, "GET", f"/api/v1/buildid/{buildid}")
    both(apps, "POST", "/api/v1/buildids", batch_body(many_packages[20:140]))  # not split
    ids = [*many_packages, *(f"{n:040x}" for n in range(200))]
    hits = _hits()
    answer, served = both(apps, "POST", "/api/v1/buildids", batch_body(ids))
    assert served and _hits() == hits + 140
    assert fast.batch_split.splits == 1  # the 350 others: split
    doc = json.loads(answer.body)
    assert len(doc["results"]) == 300 and len(doc["missing"]) == 200
    _twice(apps, "POST", "/api/v1/buildids", batch_body(ids))


def test_answers_orjson_refuses_are_not_cached_and_stay_identical(apps, apr_committed):
    """An id whose document the standard library encodes (an integer beyond 64 bits in a
    package note): no fragment can stand for it, alone or in a batch with cached ids."""
    other = "cd" * 20
    make_elf(make_package(), other, "/usr/lib64/big.so",
             package_note='{"id": 123456789012345678901234}')
    _django, fast, _spy = apps
    both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    for _round in range(2):
        for method, path, body in [("GET", f"/api/v1/buildid/{other}", None),
                                   ("GET", f"/buildids/{APR_ID},{other}", None),
                                   ("POST", "/api/v1/buildids", batch_body([APR_ID, other]))]:
            answer, served = both(apps, method, path, body)
            assert served and answer.status == 200
    # Its compat objects hold no note: those are cached.
    assert fast.answers.get_many(["m" + other, "c" + other, "m" + APR_ID])[0] is None
    assert None not in fast.answers.get_many(["c" + other, "m" + APR_ID])


def test_an_import_shows_within_the_bound_and_drops_a_negative_entry(apps):
    """Not found, cached as such; the importer then adds a package with the id: answers show it
    once the generation was read again (CHECK_SECONDS), on every route."""
    clock = _cached_app(apps)
    requests = [("GET", f"/api/v1/buildid/{NEW}", None), ("GET", f"/buildids/{NEW}", None),
                ("POST", "/api/v1/buildids", batch_body([NEW]))]
    before = [_twice(apps, *r) for r in requests]
    assert before[0].status == 404 and json.loads(before[2].body)["missing"] == [NEW]
    assert store.store_scan(_scan()).inserted
    clock.now += answercache.REFRESH_AFTER / 2
    _django, fast, _spy = apps
    for request, answer in zip(requests, before, strict=True):
        assert call(fast, *request).body == answer.body  # the cached answer, not yet checked
    clock.now += pkgcache.CHECK_SECONDS - answercache.REFRESH_AFTER / 2
    for request in requests:
        answer, served = both(apps, *request)  # Django's, which reads the database
        assert served and answer.status == 200
    assert json.loads(call(fast, *requests[0]).body)["matches"][0]["path"] == "/usr/bin/cached"


def test_the_generation_is_read_ahead_while_every_lookup_is_a_hit(apps, apr_committed):
    """Past REFRESH_AFTER a hit has the generation read in the background: the cache stays
    fresh, and no lookup waits for that read."""
    clock = _cached_app(apps)
    _django, fast, _spy = apps
    path = f"/api/v1/buildid/{APR_ID}"
    _twice(apps, "GET", path)
    checked = fast.answers.checked_at
    clock.now += answercache.REFRESH_AFTER

    async def hit_then_wait() -> Answer:
        answer = await _call(fast, "GET", path, [], [])
        while fast._refreshing():
            await asyncio.sleep(0)
        return answer

    flushes = fast.coalescer.flushes
    assert asyncio.run(hit_then_wait()).status == 200
    assert fast.coalescer.flushes == flushes + 1 and fast.answers.checked_at == clock.now
    clock.now += pkgcache.CHECK_SECONDS - answercache.REFRESH_AFTER / 2
    hits = _hits()
    assert call(fast, "GET", path).status == 200 and _hits() == hits + 1  # still fresh
    assert checked < fast.answers.checked_at


def test_a_recount_after_a_change_behind_the_importers_back_shows(apps):
    clock = _cached_app(apps)
    store.store_scan(_scan())
    path = f"/api/v1/buildid/{NEW}"
    _twice(apps, "GET", path)
    Package.objects.update(url="https://elsewhere.example/cached.rpm")
    clock.now += pkgcache.CHECK_SECONDS
    _django, fast, _spy = apps
    stale = call(fast, "GET", path)  # nothing told the web: the generation did not move
    assert b"elsewhere" not in stale.body
    counters.recount()
    clock.now += pkgcache.CHECK_SECONDS
    answer, served = both(apps, "GET", path)
    assert served and b"elsewhere" in answer.body


@pytest.mark.parametrize("cache_bytes", [3 * (answercache.ENTRY_OVERHEAD + 1500)])
def test_a_small_cache_keeps_its_bound_and_its_answers(apps, many_packages, cache_bytes):
    _django, fast, _spy = apps
    for _round in range(2):
        for buildid in many_packages[:12]:
            answer, served = both(apps, "GET", f"/api/v1/buildid/{buildid}")
            assert served and answer.status == 200
            assert fast.answers.size <= cache_bytes
    assert 1 <= len(fast.answers) < 12  # the least recently used went


def test_no_cache_when_the_setting_is_0(settings, apr_committed):
    settings.DARKSERVER_ANSWER_CACHE_MB = 0
    fast = AsgiFastPath(None)  # type: ignore[arg-type]  # answers every route itself here
    assert not fast.answers.enabled and fast.db.on_generation is None
    settings.DARKSERVER_ANSWER_CACHE_MB = 0.5
    assert AsgiFastPath(None).answers.max_bytes == 1 << 19  # type: ignore[arg-type]


# --- the cache alone ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _cache(max_bytes: int = CACHE) -> tuple[AnswerCache, Clock]:
    clock = Clock()
    cache = AnswerCache(max_bytes, clock)
    cache.seen(7, clock.now)
    return cache, clock


def test_entries_are_served_only_while_the_generation_is_fresh():
    cache, clock = _cache()
    cache.put_many([("ma", b"[1]"), ("mb", b"")], 7)
    assert cache.get_many(["ma", "mb", "mc"]) == [b"[1]", b"", None]
    clock.now += pkgcache.CHECK_SECONDS
    assert cache.get_many(["ma", "mb"]) == [None, None]  # not fresh: read the database
    cache.seen(7, clock.now)  # the same generation: everything held still stands
    assert cache.get_many(["ma", "mb"]) == [b"[1]", b""]
    cache.seen(8, clock.now + 0.1)
    assert cache.get_many(["ma", "mb"]) == [None, None] and len(cache) == 0


def test_fragments_read_under_another_generation_are_not_kept():
    cache, clock = _cache()
    cache.put_many([("ma", b"[1]")], 6)  # read before the change seen last
    cache.put_many([("mb", b"[2]")], None)  # read under several
    assert len(cache) == 0


def test_an_older_report_changes_nothing():
    """Two connections read the generation, the one that asked first reports last: it neither
    takes the cache back to its older generation nor makes it fresher."""
    cache, clock = _cache()
    cache.seen(8, clock.now + 0.5)
    cache.put_many([("ma", b"[1]")], 8)
    cache.seen(7, clock.now + 0.2)
    assert cache.generation == 8 and cache.get_many(["ma"]) == [b"[1]"]
    clock.now += 0.5 + pkgcache.CHECK_SECONDS
    assert cache.get_many(["ma"]) == [None]


def test_the_least_recently_used_go_first_and_the_size_stays_bounded():
    entry = answercache.ENTRY_OVERHEAD + 100
    cache, _clock = _cache(3 * entry)
    cache.put_many([(f"m{i}", b"x" * 100) for i in range(3)], 7)
    assert cache.get_many(["m0"]) == [b"x" * 100]  # m1 is now the least recently used
    cache.put_many([("m3", b"y" * 100)], 7)
    assert cache.get_many(["m0", "m1", "m2", "m3"]) == [b"x" * 100, None, b"x" * 100, b"y" * 100]
    assert cache.size == 3 * entry
    cache.put_many([("m4", b"z" * (3 * entry))], 7)  # larger than the whole cache: not kept
    assert cache.get_many(["m4"]) == [None] and cache.size == 3 * entry


def test_kept_fragments_hold_no_more_memory_than_they_count(apps, many_packages, settings):
    """What the cache counts is what it holds: orjson's bytes keep their whole write buffer
    (~8 KiB for a short answer), so a fragment must be kept as a copy of its own size."""
    settings.DARKSERVER_MAX_BATCH = 1000
    _django, fast, _spy = apps
    tracemalloc.start(3)
    try:
        _answer, served = both(apps, "POST", "/api/v1/buildids", batch_body(many_packages))
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert served and len(fast.answers) == 300
    lines, first = inspect.getsourcelines(fragments._matches)
    made_there = range(first, first + len(lines))  # what is left of it is what the cache keeps
    held = sum(stat.size for stat in snapshot.statistics("traceback")
               if any(frame.filename == fragments.__file__ and frame.lineno in made_there
                      for frame in stat.traceback))
    counted = sum(len(v) for v in fast.answers._entries.values())
    assert 0 < counted <= held < counted + 300 * 64  # object headers, no write buffers
