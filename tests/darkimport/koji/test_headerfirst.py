"""Header-first: build-id rows from an rpm's header (as Koji's getRPMHeaders gives it), checked
against the real tools (bsdtar + readelf) on rpms built with rpmbuild in each link style."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkimport.koji import headerfirst
from darkimport.koji.conf import KojiInstance
from darkimport.koji.source import KojiSource, RetryPolicy
from tests.kojihub import KojiHub, cached_rpms
from tests.oracle import expected_rows

READELF_TYPES = {"REL": 1, "EXEC": 2, "DYN": 3, "CORE": 4}
READELF_MACHINES = {"Advanced Micro Devices X86-64": 62, "AArch64": 183, "Intel 80386": 3}


Row = tuple[str, str, int, int, int, bool, bool]


def readelf_rows(rpm: Path) -> tuple[set[Row], int]:
    """(build-id, path, e_type, e_machine, class, big-endian, debug) for every ELF file with a
    build-id, and the number of distinct ELF files (hard links extracted by bsdtar share an
    inode)."""
    rows = set()
    inodes = set()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["bsdtar", "-xf", str(rpm), "-C", tmp], check=True)
        for row in expected_rows(rpm):
            inodes.add(Path(tmp + row.path).stat().st_ino)
            out = subprocess.run(["readelf", "-h", tmp + row.path], capture_output=True,
                                 text=True, check=True).stdout
            kind = re.search(r"Type:\s+(\w+)", out)
            machine = re.search(r"Machine:\s+(.+)", out)
            elf_class = re.search(r"Class:\s+ELF(32|64)", out)
            data = re.search(r"Data:\s+.*(little|big) endian", out)
            assert kind and machine and elf_class and data
            rows.add((row.build_id, row.path, READELF_TYPES[kind.group(1)],
                      READELF_MACHINES[machine.group(1).strip()], int(elf_class.group(1)),
                      data.group(1) == "big", row.path.startswith("/usr/lib/debug/")))
    return rows, len(inodes)


def header_rows(rows: headerfirst.HeaderRows) -> set[Row]:
    return {(e.build_id.hex(), e.path, e.elf_type, e.machine, e.elf_class, e.big_endian,
             e.debug) for e in rows.elves}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[KojiHub]:
    hub = KojiHub(tmp_path / "koji")
    for links in ("compat", "separate", "alldebug", "none"):
        hub.add_build(cached_rpms(f"hf{links}", build_id_links=links))
    hub.add_build(cached_rpms("hfnoid", nobuildid=True))
    with hub.serve():
        yield hub


def koji_headers(hub: KojiHub, nvra: str) -> dict[str, object]:
    source = KojiSource(KojiInstance("test", hub.hub_url, hub.topurl), RetryPolicy(attempts=1))
    rpm = source.session.getRPM(nvra)
    return source.rpm_headers(rpm, headerfirst.HEADER_FIELDS)


@pytest.mark.parametrize("links", ["compat", "separate", "alldebug", "none"])
def test_header_rows_equal_readelf_on_the_payload(hub: KojiHub, links: str) -> None:
    for path in cached_rpms(f"hf{links}", build_id_links=links):
        nvra = path.name.removesuffix(".rpm")
        found = headerfirst.rows_from_header(koji_headers(hub, nvra))
        assert found is not None, nvra
        expected, distinct = readelf_rows(path)
        assert expected, f"{nvra} has ELF files with build-ids"
        assert header_rows(found) == expected, nvra
        # Hard links are one ELF file (the binary and its hard link; their .debug twins).
        assert found.elf_files == distinct, nvra


def test_links_name_the_ids_where_rpm_made_them(hub: KojiHub) -> None:
    main = koji_headers(hub, "hfcompat-1.0-1.fc40.x86_64")
    found = headerfirst.rows_from_header(main)
    assert found is not None and found.links == 2  # the binary and its hard link (".1")
    # A build-id link decides over the file class: change the class's id, the row stays.
    classes = list(main["FILECLASS"])  # type: ignore[call-overload]
    classes[0] = re.sub(r"BuildID\[sha1\]=[0-9a-f]+", "BuildID[sha1]=" + "ab" * 20, classes[0])
    again = headerfirst.rows_from_header(main | {"FILECLASS": classes})
    assert again is not None and header_rows(again) == header_rows(found)


def test_header_that_cannot_account_for_every_elf_file_says_so(hub: KojiHub) -> None:
    # An ELF file with no build-id note: its class shows no BuildID and there is no link.
    noid = koji_headers(hub, "hfnoid-1.0-1.fc40.x86_64")
    assert any("BuildID" not in c and c.startswith("ELF")
               for c in noid["FILECLASS"])  # type: ignore[attr-defined]
    assert headerfirst.rows_from_header(noid) is None
    # No FILECLASS (an old rpm, or a hub that does not return it): which files are ELF is
    # unknown, so the payload must be read.
    compat = koji_headers(hub, "hfcompat-1.0-1.fc40.x86_64")
    assert headerfirst.rows_from_header(compat | {"FILECLASS": None}) is None
    # An ELF machine the mapping does not know.
    odd = [c.replace("x86-64", "Imaginary 9000") for c in compat["FILECLASS"]]  # type: ignore[attr-defined]
    assert headerfirst.rows_from_header(compat | {"FILECLASS": odd}) is None


def test_links_pointing_outside_the_package_or_upwards_are_ignored() -> None:
    header = {
        "FILENAMES": ["/usr/bin/tool", "/usr/lib/.build-id/aa/" + "bb" * 19,
                      "/usr/lib/.build-id/cc/" + "dd" * 19, "/usr/lib/.build-id/ee/" + "ff" * 19],
        "FILEMODES": [0o100755, 0o120777, 0o120777, 0o120777],
        "FILELINKTOS": ["", "../../../../usr/bin/tool", "../../../../usr/bin/elsewhere",
                        "../../../../../../../etc/passwd"],
        "FILECLASS": ["ELF 64-bit LSB pie executable, x86-64, version 1 (SYSV)", "", "", ""],
        "FILEINODES": [1, 2, 3, 4], "FILEDEVICES": [1, 1, 1, 1], "FILEFLAGS": [0, 0, 0, 0],
    }
    found = headerfirst.rows_from_header(header)
    assert found is not None
    assert [(e.build_id.hex(), e.path, e.elf_type, e.machine, e.debug) for e in found.elves] == [
        ("aa" + "bb" * 19, "/usr/bin/tool", 3, 62, False)]
