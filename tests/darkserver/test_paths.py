"""`.build-id` debug paths are stored as shared templates (paths.py) and answered as the paths
they stand for, by every endpoint, in the same order as any other path."""

from __future__ import annotations

import pytest
from django.urls import reverse

from darkserver.lookup import paths
from darkserver.lookup.models import Path

ID_A = "ab" * 8 + "01" * 12
ID_B = "ab" * 8 + "02" * 12
OWN_A = f"/usr/lib/debug/.build-id/ab/{ID_A[2:]}"
OWN_B = f"/usr/lib/debug/.build-id/ab/{ID_B[2:]}"


@pytest.mark.parametrize(("path", "build_id", "text"), [
    (OWN_A + ".debug", ID_A, paths.TEMPLATES[1]),
    (OWN_A, ID_A, paths.TEMPLATES[0]),
    (OWN_A + ".debug", ID_B, OWN_A + ".debug"),  # another file's path: stored as it is
    (OWN_A + ".dwo", ID_A, OWN_A + ".dwo"),
    ("/usr/lib/debug/usr/bin/x.debug", ID_A, "/usr/lib/debug/usr/bin/x.debug"),
])
def test_stored_and_expanded(path, build_id, text):
    assert paths.stored(path, bytes.fromhex(build_id)) == text
    assert paths.expand(text, bytes.fromhex(build_id)) == path


def test_split_finds_the_template_and_build_id():
    assert paths.split(OWN_A + ".debug") == (paths.TEMPLATES[1], bytes.fromhex(ID_A))
    assert paths.split(OWN_A) == (paths.TEMPLATES[0], bytes.fromhex(ID_A))
    assert paths.split("/usr/lib/debug/.build-id/ab/c") is None  # half a byte
    assert paths.split("/usr/lib/debug/.build-id/AB/" + ID_A[2:]) is None
    assert paths.split("/usr/bin/x") is None


@pytest.fixture
def dbgsym(make):
    """A -dbgsym deb with two files at their .build-id paths (one with a second, link-like
    row without .debug), a stray .build-id path of another id, and its binary package."""
    build = make.build(name="hello", version="2.10", release="3", distro="deb12")
    main = make.package(build, kind="deb", nvra="hello_2.10-3_amd64", arch="amd64")
    debug = make.package(build, name="hello-dbgsym", kind="deb", nvra="hello-dbgsym_2.10-3_amd64",
                         arch="amd64")
    make.elf(main, ID_A, "/usr/bin/hello")
    make.elf(main, ID_B, "/usr/lib/libhello.so.1")
    make.elf(debug, ID_A, OWN_A + ".debug")
    make.elf(debug, ID_A, OWN_A)
    make.elf(debug, ID_B, OWN_B + ".debug")
    make.elf(debug, ID_B, OWN_A + ".debug.stray")
    return main, debug


def test_templates_are_two_shared_rows(dbgsym):
    assert set(Path.objects.filter(scope=paths.TEMPLATE_SCOPE).values_list("path", flat=True)) \
        == set(paths.TEMPLATES)


def test_lookup_answers_the_expanded_paths(client, dbgsym):
    doc = client.get(reverse("api-buildid", args=[ID_A])).json()
    assert [(m["package"]["nvra"], m["path"]) for m in doc["matches"]] == [
        ("hello-dbgsym_2.10-3_amd64", OWN_A),
        ("hello-dbgsym_2.10-3_amd64", OWN_A + ".debug"),
        ("hello_2.10-3_amd64", "/usr/bin/hello"),
    ]
    batch = client.post(reverse("api-buildids"), {"buildids": [ID_A, ID_B]},
                        content_type="application/json").json()
    assert [m["path"] for m in batch["results"][ID_B]] == [
        OWN_A + ".debug.stray", OWN_B + ".debug", "/usr/lib/libhello.so.1"]
    compat = client.get(f"/buildids/{ID_B}").json()
    assert sorted(r["elf"] for r in compat) == sorted(
        [OWN_A + ".debug.stray", OWN_B + ".debug", "/usr/lib/libhello.so.1"])


def test_package_lists_its_files_in_path_order(client, dbgsym):
    doc = client.get(reverse("api-rpm", args=["hello-dbgsym_2.10-3_amd64.deb"])).json()
    assert [(f["path"], f["buildid"]) for f in doc["files"]] == [
        (OWN_A, ID_A), (OWN_A + ".debug", ID_A), (OWN_A + ".debug.stray", ID_B),
        (OWN_B + ".debug", ID_B)]


def test_path_lookup_of_a_build_id_path(client, dbgsym):
    for path, want in [(OWN_A + ".debug", [ID_A]), (OWN_A, [ID_A]), (OWN_B + ".debug", [ID_B]),
                       (OWN_A + ".debug.stray", [ID_B]), (OWN_B, [])]:
        doc = client.get(reverse("api-path"), {"path": path}).json()
        assert [(m["buildid"], m["path"]) for m in doc["matches"]] == [(i, path) for i in want]


def test_prefix_orders_the_expanded_paths(client, dbgsym):
    doc = client.get(reverse("api-prefix", args=["ab" * 8])).json()
    assert [(m["buildid"], m["path"]) for m in doc["matches"]] == [
        (ID_A, OWN_A), (ID_A, OWN_A + ".debug"), (ID_A, "/usr/bin/hello"),
        (ID_B, OWN_A + ".debug.stray"), (ID_B, OWN_B + ".debug"), (ID_B, "/usr/lib/libhello.so.1"),
    ]
