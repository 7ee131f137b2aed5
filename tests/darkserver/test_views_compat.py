"""The original service's endpoints: fixed URLs and shapes (docs/API.md)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from darkserver import __version__
from tests.darkserver.conftest import APR_ID, APR_URL, apr_compat

APR_NVRA = "apr-1.4.5-1.fc16.x86_64"


def test_buildids_lists_every_file_with_the_id(client, apr):
    response = client.get(reverse("compat-buildids", args=[APR_ID]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == [apr_compat(), apr_compat(debuginfo=True)]


def test_buildids_is_case_insensitive_and_answers_lowercase(client, apr):
    response = client.get(reverse("compat-buildids", args=[APR_ID.upper()]))
    assert response.json() == [apr_compat(), apr_compat(debuginfo=True)]


def test_buildids_takes_a_comma_separated_list_in_order(client, apr, make):
    other = make.package(make.build(name="zlib", version="1.3", release="1.fc40"), url="https://x/z.rpm")
    make.elf(other, "aa" * 20, "/usr/lib64/libz.so.1")
    unknown = "bb" * 20
    url = reverse("compat-buildids", args=[f"{'AA' * 20},{unknown},{APR_ID},{'aa' * 20}"])
    assert client.get(url).json() == [
        {"buildid": "aa" * 20, "elf": "/usr/lib64/libz.so.1", "rpm": "zlib-1.3-1.fc40.x86_64",
         "distro": "fc40", "url": "https://x/z.rpm"},
        apr_compat(),
        apr_compat(debuginfo=True),
    ]


def test_buildids_unknown_is_an_empty_list(client, db):
    response = client.get(reverse("compat-buildids", args=["12" * 20]))
    assert (response.status_code, response.json()) == (200, [])


def test_buildids_with_one_malformed_id_is_a_400_naming_it(client, apr):
    response = client.get(reverse("compat-buildids", args=[f"{APR_ID},xyz123"]))
    assert response.status_code == 400
    assert response.json() == {
        "error": "malformed build-id 'xyz123': build-id must be 8 to 128 hex digits, even length",
        "status": 400,
        "buildid": "xyz123",
    }


@pytest.mark.parametrize("suffix", ["", ".rpm"])
def test_rpm2buildids(client, apr, suffix):
    response = client.get(reverse("compat-rpm2buildids", args=[APR_NVRA + suffix]))
    assert (response.status_code, response.json()) == (200, [apr_compat()])


def test_rpm2buildids_unknown_is_an_empty_list(client, db):
    response = client.get(reverse("compat-rpm2buildids", args=["nope-1-1.fc40.x86_64.rpm"]))
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("suffix", ["", ".rpm"])
def test_package_gives_the_download_url(client, apr, suffix):
    response = client.get(reverse("compat-package", args=[APR_NVRA + suffix]))
    assert (response.status_code, response.json()) == (200, {"url": APR_URL})


def test_package_unknown_gives_an_empty_url(client, db):
    response = client.get(reverse("compat-package", args=["nope-1-1.fc40.x86_64"]))
    assert (response.status_code, response.json()) == (200, {"url": ""})


def test_package_without_stored_url_falls_back_to_the_first_template(client, make, settings):
    settings.DARKSERVER_URL_TEMPLATES = [
        {"kind": "mirror", "distro": "fc", "template": "https://mirror/{distro_version}/{initial}/{filename}"},
    ]
    make.package(make.build(name="bash", version="5.2", release="1.fc40"))
    response = client.get(reverse("compat-package", args=["bash-5.2-1.fc40.x86_64"]))
    assert response.json() == {"url": "https://mirror/40/b/bash-5.2-1.fc40.x86_64.rpm"}


def test_serverversion(client, db):
    response = client.get(reverse("compat-serverversion"))
    assert (response.status_code, response.json()) == (200, {"server-version": __version__})
