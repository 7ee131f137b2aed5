"""Model-row factories for the web tests, and the original service's fixture (apr on fc16)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from darkserver.lookup.models import Build, ElfFile, Package, Path
from tests.helpers import live_app

APR_ID = "868357887701f51d867eacd0da6e5af6d8c70ce2"
APR_PATH = "/usr/lib64/libapr-1.so.0.4.5"
APR_DEBUG_PATH = "/usr/lib/debug/usr/lib64/libapr-1.so.0.4.5.debug"
APR_URL = "https://kojipkgs.fedoraproject.org/packages/apr/1.4.5/1.fc16/x86_64/apr-1.4.5-1.fc16.x86_64.rpm"
APR_DEBUG_URL = (
    "https://kojipkgs.fedoraproject.org/packages/apr/1.4.5/1.fc16/x86_64/"
    "apr-debuginfo-1.4.5-1.fc16.x86_64.rpm"
)

_serial = itertools.count(1)


def make_build(**fields: Any) -> Build:
    n = next(_serial)
    values: dict[str, Any] = {
        "instance": "", "name": f"pkg{n}", "version": "1.0", "release": f"{n}.fc40",
        "distro": "fc40",
    }
    return Build.objects.create(**(values | fields))


def make_package(build: Build | None = None, **fields: Any) -> Package:
    build = build or make_build()
    name = fields.pop("name", build.name)
    arch = fields.pop("arch", "x86_64")
    kind = fields.pop("kind", "rpm")
    nvra = f"{name}-{build.version}-{build.release}.{arch}"
    values: dict[str, Any] = {
        "build": build, "kind": kind, "nvra": nvra, "name": name, "epoch": build.epoch,
        "version": build.version, "release": build.release, "arch": arch,
        "filename": f"{nvra}.{kind}", "size": 1000, "sha256": "ab" * 32, "sigmd5": "cd" * 16,
        "url": "",
    }
    return Package.objects.create(**(values | fields))


def make_elf(package: Package, build_id: str, path: str, **fields: Any) -> ElfFile:
    values: dict[str, Any] = {
        "package": package, "build_id": bytes.fromhex(build_id),
        "path": Path.of(path, bytes.fromhex(build_id), package.name), "elf_type": 3,
        "machine": 62, "elf_class": 64,
        "big_endian": False,
        "debug": path.startswith("/usr/lib/debug/"),
    }
    return ElfFile.objects.create(**(values | fields))


@pytest.fixture
def make(db: None) -> SimpleNamespace:
    """``make.build(...)``, ``make.package(build, ...)``, ``make.elf(package, id, path, ...)``."""
    return SimpleNamespace(build=make_build, package=make_package, elf=make_elf)


@dataclass
class Apr:
    build: Build
    main: Package
    debuginfo: Package


def make_apr() -> Apr:
    build = make_build(
        instance="primary", koji_build_id=270497, name="apr", version="1.4.5", release="1.fc16",
        distro="fc16",
    )
    main = make_package(build, url=APR_URL, koji_rpm_id=2364915)
    debuginfo = make_package(build, name="apr-debuginfo", url=APR_DEBUG_URL, koji_rpm_id=2364916)
    make_elf(main, APR_ID, APR_PATH)
    make_elf(debuginfo, APR_ID, APR_DEBUG_PATH, debug=True)
    return Apr(build, main, debuginfo)


@pytest.fixture
def apr(db: None) -> Apr:
    """The original fixture: one build-id in apr and in apr-debuginfo (fc16, primary Koji)."""
    return make_apr()


def apr_match(debuginfo: bool = False) -> dict[str, Any]:
    """The /api/v1 match document of one of the two apr rows."""
    name = "apr-debuginfo" if debuginfo else "apr"
    nvra = f"{name}-1.4.5-1.fc16.x86_64"
    return {
        "buildid": APR_ID,
        "path": APR_DEBUG_PATH if debuginfo else APR_PATH,
        "elf_type": "DYN",
        "machine": "x86_64",
        "elf_class": 64,
        "byte_order": "little",
        "debug": debuginfo,
        "package_note": None,
        "package": {
            "nvra": nvra, "kind": "rpm", "name": name, "epoch": None, "version": "1.4.5",
            "release": "1.fc16", "arch": "x86_64", "filename": f"{nvra}.rpm", "size": 1000,
            "sha256": "ab" * 32, "sigmd5": "cd" * 16,
            "koji_rpm_id": 2364916 if debuginfo else 2364915,
        },
        "build": {
            "name": "apr", "epoch": None, "version": "1.4.5", "release": "1.fc16",
            "distro": "fc16", "instance": "primary", "koji_build_id": 270497,
        },
        "urls": [{"kind": "koji", "url": APR_DEBUG_URL if debuginfo else APR_URL}],
    }


def apr_compat(debuginfo: bool = False) -> dict[str, str]:
    """The compatibility document of one of the two apr rows."""
    return {
        "buildid": APR_ID,
        "elf": APR_DEBUG_PATH if debuginfo else APR_PATH,
        "rpm": "apr-debuginfo-1.4.5-1.fc16.x86_64" if debuginfo else "apr-1.4.5-1.fc16.x86_64",
        "distro": "fc16",
        "url": APR_DEBUG_URL if debuginfo else APR_URL,
    }


@pytest.fixture
def page_server(transactional_db: None) -> Iterator[str]:
    """The app served over real HTTP from a thread, sharing the test database; yields its URL."""
    with live_app() as url:
        yield url

