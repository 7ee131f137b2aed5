"""The answer cache (darkserver/lookup/answercache.py) in the real server: gunicorn with the
project's settings, the importer writing to the same database meanwhile. Ids asked before their
packages exist are answered "not found" from the cache; once the importer has stored them, the
server answers them (within the cache's 1 s bound plus the import), single, compat and batch.
"""

from __future__ import annotations

import contextlib
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import mariadb
from tests.helpers import BIN, get_json, gunicorn, run_cmd, wait_for


@contextlib.contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'answers.sqlite3'}"
        return
    with mariadb.scratch_database("ds_answers") as database:
        yield mariadb.url(database)


def _cache_hits(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.search(r'^darkserver_answer_cache_buildids_total\{result="hit"\} (\S+)$', text,
                      re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def test_an_import_shows_through_a_running_server(kind: str, sample_set: Any,
                                                  tmp_path: Path) -> None:
    expected = sample_set.expected[0]
    ids = sorted({e.build_id for e in sample_set.expected})
    with _database(kind, tmp_path) as url:
        env = {"DARKSERVER_DATABASE_URL": url}
        run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=env)
        with gunicorn(env) as base:  # the default answer cache
            single = f"{base}/api/v1/buildid/{expected.build_id}"
            for _ in range(3):  # "not found", the second and third from the cache
                assert get_json(single)[0] == 404
                assert get_json(f"{base}/buildids/{expected.build_id}") == (200, [])
                status, doc = get_json(base + "/api/v1/buildids", {"buildids": ids})
                assert status == 200 and doc["results"] == {}
            assert _cache_hits(base) >= 2 * (2 + len(ids))
            imported = run_cmd([str(BIN / "darkserver-import"), "--json",
                                str(sample_set.directory)], env=env, check=False)
            assert imported.returncode == 0, imported.stderr

            def answered() -> bool:
                status, doc = get_json(single)
                return status == 200 and expected.path in {m["path"] for m in doc["matches"]}

            wait_for("the imported id to be answered", answered)
            status, rows = get_json(f"{base}/buildids/{expected.build_id}")
            assert status == 200
            assert (expected.path, expected.nvra) in {(r["elf"], r["rpm"]) for r in rows}
            status, doc = get_json(base + "/api/v1/buildids", {"buildids": ids})
            assert status == 200 and doc["missing"] == [] and sorted(doc["results"]) == ids
