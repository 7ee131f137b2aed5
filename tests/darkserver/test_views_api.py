"""/api/v1/: every endpoint, whole documents compared."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from darkserver.lookup import counters
from darkserver.lookup.models import ElfFile, Path
from tests.darkserver.conftest import (
    APR_DEBUG_PATH,
    APR_DEBUG_URL,
    APR_ID,
    APR_PATH,
    APR_URL,
    apr_match,
)


def post_json(client, url, doc):
    return client.post(url, json.dumps(doc), content_type="application/json")


# --- one build-id ------------------------------------------------------------------------------


def test_buildid_gives_every_match_with_metadata(client, apr):
    response = client.get(reverse("api-buildid", args=[APR_ID]))
    assert response.status_code == 200
    assert response.json() == {
        "buildid": APR_ID,
        "matches": [apr_match(), apr_match(debuginfo=True)],
    }


def test_sources_names_the_debugsource_package_of_the_build(client, apr, make):
    source = make.package(apr.build, name="apr-debugsource", url="https://koji/src.rpm")
    other = make.build(name="apr", version="1.5.0", release="1.fc17")
    make.package(other, name="apr-debugsource")  # another build's: not these sources
    make.package(apr.build, name="apr-devel")  # same build, no sources
    response = client.get(reverse("api-sources", args=[APR_ID.upper()]))
    assert response.status_code == 200
    doc = response.json()
    assert doc["buildid"] == APR_ID
    assert [s["package"]["nvra"] for s in doc["sources"]] == [source.nvra]
    only = doc["sources"][0]
    assert only["build"] == apr_match()["build"]
    assert only["urls"] == [{"kind": "koji", "url": "https://koji/src.rpm"}]


def test_sources_empty_without_debugsource_and_404_when_unknown(client, apr):
    response = client.get(reverse("api-sources", args=[APR_ID]))
    assert (response.status_code, response.json()) == (200, {"buildid": APR_ID, "sources": []})
    missing = client.get(reverse("api-sources", args=["ab" * 20]))
    assert missing.status_code == 404 and missing.json()["buildid"] == "ab" * 20
    assert client.get(reverse("api-sources", args=["abc"]).replace("abc", "xyz")).status_code \
        == 400



def test_sources_statement_compiled_once(client, apr, make):
    """source_rows runs SQL the ORM compiled once per IN-list size (compiling cost ~1.2 ms of
    each /sources answer), with the same rows as the ORM's own query, also over several
    chunks of package ids."""
    from darkserver.lookup import queries
    from darkserver.lookup.models import Package

    make.package(apr.build, name="apr-debugsource")
    make.package(apr.build, name="apr-debugsource", arch="aarch64")
    queries._source_sql.cache_clear()
    for _ in range(2):
        assert client.get(reverse("api-sources", args=[APR_ID])).status_code == 200
    assert queries._source_sql.cache_info().misses == 1
    ids = list(Package.objects.values_list("id", flat=True))
    expected = list(Package.objects.filter(build=apr.build, name__endswith="-debugsource")
                    .order_by("nvra").values_list("nvra", flat=True))
    for wanted in (ids, ids * 300):  # one chunk; more than one (ids repeat across chunks)
        assert [r["package__nvra"] for r in queries.source_rows(wanted)] == expected

def test_buildid_is_case_insensitive(client, apr):
    response = client.get(reverse("api-buildid", args=[APR_ID.upper()]))
    assert response.json()["buildid"] == APR_ID
    assert response.json()["matches"] == [apr_match(), apr_match(debuginfo=True)]


def test_buildid_miss_is_a_404_echoing_the_id(client, apr):
    response = client.get(reverse("api-buildid", args=["AB" * 20]))
    assert response.status_code == 404
    assert response.json() == {
        "error": "build-id not found",
        "status": 404,
        "buildid": "ab" * 20,
        "searched": "exact build-id among the ELF files of every imported package",
    }


def test_buildid_is_one_query(client, apr, django_assert_num_queries):
    with django_assert_num_queries(1):
        client.get(reverse("api-buildid", args=[APR_ID]))


def test_buildid_shows_numbers_for_unknown_elf_types_and_the_package_note(client, make):
    note = {"type": "rpm", "name": "foo", "version": "1-1.fc40", "architecture": "riscv64"}
    package = make.package(make.build(name="foo", version="1", release="1.fc40"))
    make.elf(
        package,
        "0123456789abcdef",
        "/usr/bin/foo",
        elf_type=7,
        machine=9999,
        package_note=json.dumps(note),
    )
    [match] = client.get(reverse("api-buildid", args=["0123456789abcdef"])).json()["matches"]
    got = (match["elf_type"], match["machine"], match["package_note"])
    assert got == ("ET_0x7", "EM_9999", note)


def test_candidate_urls_come_in_client_order(client, apr, settings):
    settings.DARKSERVER_URL_TEMPLATES = [
        {
            "kind": "archive",
            "distro": "fc",
            "template": "https://archive/fedora/{distro_version}/{arch}/{initial}/{filename}",
        },
        {
            "kind": "mirror",
            "distro": "fc",
            "template": "https://mirror/fedora/{distro_version}/{arch}/{initial}/{filename}",
        },
        {"kind": "mirror", "distro": "el", "template": "https://el-only/{filename}"},
        {
            "kind": "mirror",
            "distro": "",
            "template": "https://kojipkgs.fedoraproject.org/packages/{build_name}/{build_version}/"
            "{build_release}/{arch}/{filename}",
        },
    ]
    [main, _debug] = client.get(reverse("api-buildid", args=[APR_ID])).json()["matches"]
    assert main["urls"] == [
        {"kind": "mirror", "url": "https://mirror/fedora/16/x86_64/a/apr-1.4.5-1.fc16.x86_64.rpm"},
        # The last template renders the stored Koji URL again: it appears once.
        {"kind": "mirror", "url": APR_URL},
        {
            "kind": "archive",
            "url": "https://archive/fedora/16/x86_64/a/apr-1.4.5-1.fc16.x86_64.rpm",
        },
    ]


def test_local_package_url_is_kind_package(client, make):
    package = make.package(make.build(name="foo"), url="file:///srv/pkgs/foo.rpm")
    make.elf(package, "12345678", "/usr/bin/foo")
    [match] = client.get(reverse("api-buildid", args=["12345678"])).json()["matches"]
    assert match["urls"] == [{"kind": "package", "url": "file:///srv/pkgs/foo.rpm"}]


# --- batch -------------------------------------------------------------------------------------


def test_batch_puts_every_id_in_results_or_missing(client, apr):
    unknown = "ff" * 20
    response = post_json(
        client, reverse("api-buildids"), {"buildids": [APR_ID.upper(), unknown, APR_ID]}
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": {APR_ID: [apr_match(), apr_match(debuginfo=True)]},
        "missing": [unknown],
    }


def test_batch_of_nothing(client, db):
    response = post_json(client, reverse("api-buildids"), {"buildids": []})
    assert (response.status_code, response.json()) == (200, {"results": {}, "missing": []})


def test_batch_of_5000_ids_is_a_handful_of_queries(client, make, django_assert_max_num_queries):
    packages = [make.package(make.build(name=f"lib{n}")) for n in range(4)]
    rows = [
        ElfFile(
            package=packages[n % 4],
            build_id=n.to_bytes(20, "big"),
            path=Path.of(f"/usr/lib/f{n}.so", n.to_bytes(20, "big"), packages[n % 4].name),
            elf_type=3,
            machine=62,
            elf_class=64,
            big_endian=False,
        )
        for n in range(0, 5000, 2)
    ]
    ElfFile.objects.bulk_create(rows)
    ids = [n.to_bytes(20, "big").hex() for n in range(5000)]
    with django_assert_max_num_queries(10):  # 5,000 / 500 per IN list
        response = post_json(client, reverse("api-buildids"), {"buildids": ids})
    doc = response.json()
    assert sorted(doc["results"]) == ids[0::2]
    assert doc["missing"] == ids[1::2]
    assert doc["results"][ids[10]] == [
        {
            "buildid": ids[10],
            "path": "/usr/lib/f10.so",
            "elf_type": "DYN",
            "machine": "x86_64",
            "elf_class": 64,
            "byte_order": "little",
            "debug": False,
            "package_note": None,
            "package": client.get(reverse("api-rpm", args=[packages[2].nvra])).json()["package"],
            "build": client.get(reverse("api-rpm", args=[packages[2].nvra])).json()["build"],
            "urls": [],
        }
    ]


# --- prefix ------------------------------------------------------------------------------------


@pytest.fixture
def prefixed(make):
    """Ids around the prefix 0123456789abcdef0 (17 digits): inside, just below, just above."""
    package = make.package(make.build(name="pre"))
    ids = {
        "inside_low": "0123456789abcdef00" + "00" * 11,
        "inside_high": "0123456789abcdef0f" + "ff" * 11,
        "inside_short": "0123456789abcdef05",  # a 9-byte id is a build-id too
        "below": "0123456789abcdeeff" + "ff" * 11,
        "above": "0123456789abcdef10" + "00" * 11,
    }
    for name, build_id in ids.items():
        make.elf(package, build_id, f"/usr/bin/{name}")
    return ids


def test_prefix_odd_length_matches_exactly_the_ids_starting_with_it(client, prefixed):
    response = client.get(reverse("api-prefix", args=["0123456789ABCDEF0"]))
    doc = response.json()
    assert response.status_code == 200
    assert (doc["prefix"], doc["truncated"]) == ("0123456789abcdef0", False)
    assert [m["buildid"] for m in doc["matches"]] == [
        prefixed["inside_low"],
        prefixed["inside_short"],
        prefixed["inside_high"],
    ]
    assert [m["path"] for m in doc["matches"]] == [
        "/usr/bin/inside_low",
        "/usr/bin/inside_short",
        "/usr/bin/inside_high",
    ]


def test_prefix_even_length(client, prefixed):
    doc = client.get(reverse("api-prefix", args=["0123456789abcdef"])).json()
    assert [m["path"] for m in doc["matches"]] == [
        "/usr/bin/inside_low",
        "/usr/bin/inside_short",
        "/usr/bin/inside_high",
        "/usr/bin/above",
    ]


def test_prefix_of_only_f_has_no_upper_bound(client, make):
    package = make.package()
    make.elf(package, "ff" * 20, "/usr/bin/ffff")
    doc = client.get(reverse("api-prefix", args=["f" * 17])).json()
    assert [m["path"] for m in doc["matches"]] == ["/usr/bin/ffff"]


def test_prefix_is_truncated_at_the_limit(client, prefixed, settings):
    settings.DARKSERVER_MAX_MATCHES = 2
    doc = client.get(reverse("api-prefix", args=["0123456789abcdef"])).json()
    assert doc["truncated"] is True
    assert [m["path"] for m in doc["matches"]] == ["/usr/bin/inside_low", "/usr/bin/inside_short"]


@pytest.mark.parametrize("bad", ["0123456789abcde", "0123456789abcdeg", "0" * 129])
def test_prefix_too_short_or_not_hex_is_a_400(client, db, bad):
    response = client.get(reverse("api-prefix", args=[bad]))
    assert response.status_code == 400
    assert response.json() == {
        "error": f"malformed build-id {bad!r}: a build-id prefix must be 16 to 128 hex digits",
        "status": 400,
        "buildid": bad,
    }


# --- rpm, package, path ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".rpm"])
def test_rpm_gives_the_package_and_its_files(client, apr, suffix):
    response = client.get(reverse("api-rpm", args=["apr-debuginfo-1.4.5-1.fc16.x86_64" + suffix]))
    debug = apr_match(debuginfo=True)
    assert response.status_code == 200
    assert response.json() == {
        "package": debug["package"],
        "build": debug["build"],
        "urls": [{"kind": "koji", "url": APR_DEBUG_URL}],
        "files": [debug],
    }


def test_rpm_without_elf_files_is_known(client, apr, make):
    make.package(apr.build, name="apr-doc", arch="noarch")
    doc = client.get(reverse("api-rpm", args=["apr-doc-1.4.5-1.fc16.noarch"])).json()
    assert doc["files"] == []
    assert doc["package"]["nvra"] == "apr-doc-1.4.5-1.fc16.noarch"
    assert doc["build"] == apr_match()["build"]


def test_rpm_unknown_is_a_404(client, db):
    response = client.get(reverse("api-rpm", args=["nope-1-1.x86_64.rpm"]))
    assert response.status_code == 404
    assert response.json() == {
        "error": "package not found",
        "status": 404,
        "nvra": "nope-1-1.x86_64",
        "searched": "package NVRA",
    }


def test_deb_by_name_version_arch(client, make):
    build = make.build(name="hello", version="2.10", release="3", distro="deb12")
    deb = make.package(
        build,
        kind="deb",
        nvra="hello_2.10-3_amd64",
        arch="amd64",
        filename="hello_2.10-3_amd64.deb",
    )
    make.elf(deb, "abcdef0123456789", "/usr/bin/hello")
    doc = client.get(reverse("api-rpm", args=["hello_2.10-3_amd64.deb"])).json()
    assert [f["path"] for f in doc["files"]] == ["/usr/bin/hello"]
    assert doc["package"]["kind"] == "deb"


@pytest.mark.parametrize("name", ["apr", "apr-debuginfo"])
def test_package_name_gives_its_builds(client, apr, make, name):
    newer = make.build(name="apr", version="1.4.6", release="1.fc17", distro="fc17")
    make.package(newer)
    make.build(name="apr-util")  # another name: not listed
    response = client.get(reverse("api-package", args=[name]))
    builds = [
        {
            "name": "apr",
            "epoch": None,
            "version": "1.4.5",
            "release": "1.fc16",
            "distro": "fc16",
            "instance": "primary",
            "koji_build_id": 270497,
            "packages": ["apr-1.4.5-1.fc16.x86_64", "apr-debuginfo-1.4.5-1.fc16.x86_64"],
        },
        {
            "name": "apr",
            "epoch": None,
            "version": "1.4.6",
            "release": "1.fc17",
            "distro": "fc17",
            "instance": "",
            "koji_build_id": None,
            "packages": ["apr-1.4.6-1.fc17.x86_64"],
        },
    ]
    if name == "apr-debuginfo":  # only the build that has an apr-debuginfo package
        builds = builds[:1]
    assert (response.status_code, response.json()) == (200, {"name": name, "builds": builds})


def test_package_name_unknown_is_a_404(client, db):
    response = client.get(reverse("api-package", args=["nope"]))
    assert response.status_code == 404
    assert response.json() == {
        "error": "package not found",
        "status": 404,
        "name": "nope",
        "searched": "build names and binary package names",
    }


def test_path_gives_every_file_installed_there(client, apr, make):
    other = make.package(make.build(name="apr", version="1.4.6", release="1.fc17"))
    make.elf(other, "11" * 20, APR_PATH)
    make.elf(other, "22" * 20, APR_PATH + ".other")
    response = client.get(reverse("api-path"), {"path": APR_PATH})
    doc = response.json()
    assert response.status_code == 200
    assert doc["matches"][0] == apr_match()
    assert [(m["buildid"], m["path"], m["package"]["nvra"]) for m in doc["matches"]] == [
        (APR_ID, APR_PATH, "apr-1.4.5-1.fc16.x86_64"),
        ("11" * 20, APR_PATH, "apr-1.4.6-1.fc17.x86_64"),
    ]
    assert (doc["path"], doc["truncated"]) == (APR_PATH, False)


def test_path_unknown_is_an_empty_list(client, apr):
    doc = client.get(reverse("api-path"), {"path": APR_DEBUG_PATH + "x"}).json()
    assert doc == {"path": APR_DEBUG_PATH + "x", "matches": [], "truncated": False}


@pytest.mark.parametrize("query", [{}, {"path": "usr/bin/foo"}])
def test_path_must_be_absolute(client, db, query):
    response = client.get(reverse("api-path"), query)
    assert response.status_code == 400
    assert response.json() == {
        "error": "give an absolute install path: /api/v1/path?path=/usr/bin/foo",
        "status": 400,
        "path": query.get("path", ""),
    }


# --- stats, health -----------------------------------------------------------------------------


def test_stats(client, apr, make):
    package = make.package(make.build(name="bash", distro="fc40"), without_build_id=3)
    make.elf(package, APR_ID, "/usr/bin/copy-of-apr")  # same id again: one build-id
    make.elf(package, "33" * 20, "/usr/bin/bash")
    # The factories write rows the way a DBA would, behind the importer: recount, as
    # `darkserver recount` does (tests/darkimport/run/test_store.py checks the importer's own).
    counters.recount()
    response = client.get(reverse("api-stats"))
    assert (response.status_code, response.json()) == (
        200,
        {
            "builds": 2,
            "packages": 3,
            "elf_files": 4,
            "build_ids": 2,
            "without_build_id": 3,
            "distros": {"fc16": 2, "fc40": 1},
            "imports": [],
        },
    )


def test_stats_show_the_last_import_of_each_source(client, db):
    from datetime import UTC, datetime, timedelta

    from darkserver.lookup.models import ImportRun

    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    ImportRun.objects.create(source="https://mirror.example/fedora/40/", kind="rpm-md",
                             status="done", started_at=t0, finished_at=t0 + timedelta(minutes=9),
                             new=70000, known=0, failed=2, bytes_read=10**11, seconds=540.0)
    ImportRun.objects.create(source="https://mirror.example/fedora/40/", kind="rpm-md",
                             status="done", started_at=t0 + timedelta(days=1),
                             finished_at=t0 + timedelta(days=1, seconds=30), new=12,
                             known=70000, failed=0, bytes_read=5 * 10**6, seconds=30.5)
    ImportRun.objects.create(source="/srv/debs", kind="files", started_at=t0)  # killed
    imports = client.get(reverse("api-stats")).json()["imports"]
    assert imports == [
        {"source": "https://mirror.example/fedora/40/", "kind": "rpm-md", "status": "done",
         "started_at": "2026-12-02T10:00:00+00:00", "finished_at": "2026-12-02T10:00:30+00:00",
         "new": 12, "known": 70000, "failed": 0, "bytes": 5 * 10**6, "seconds": 30.5},
        {"source": "/srv/debs", "kind": "files", "status": "running",
         "started_at": "2026-12-01T10:00:00+00:00", "finished_at": None, "new": 0, "known": 0,
         "failed": 0, "bytes": 0, "seconds": 0.0},
    ]


def test_health(client):
    response = client.get(reverse("api-health"))
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready(client, db):
    response = client.get(reverse("api-ready"))
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "database": "ok", "migrations": "ok"},
    )


def test_not_ready_when_a_migration_is_missing(client, db):
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    (_app, latest), = MigrationLoader(connection).graph.leaf_nodes("lookup")
    MigrationRecorder(connection).record_unapplied("lookup", latest)
    response = client.get(reverse("api-ready"))
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "migrations": f"not applied: lookup.{latest}",
    }


def test_not_ready_when_the_database_fails(client, db, monkeypatch):
    from django.db import OperationalError, connection

    def broken(*args, **kwargs):
        raise OperationalError("server has gone away")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", broken)
        response = client.get(reverse("api-ready"))
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "migrations": "unknown",
    }
