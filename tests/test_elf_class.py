"""ELF class and byte order, from real files through the importer to the API: an rpm holding
big- and little-endian, 32- and 64-bit objects of four architectures (darkimport.samples:
FOREIGN) next to gcc's x86 ones, imported by the real scanner and writer, served by the views;
readelf -h and rpm's own file classes (libmagic) are the oracles."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse

from darkimport import samples
from darkimport.koji import headerfirst
from darkimport.run import scan, store

pytestmark = pytest.mark.django_db(transaction=True)

# readelf -h (Class, byte order, Machine) -> the machine name distributions use.
READELF_NAMES = {
    ("ELF64", "big", "PowerPC64"): "ppc64",
    ("ELF64", "little", "PowerPC64"): "ppc64le",
    ("ELF32", "big", "IBM S/390"): "s390",
    ("ELF64", "big", "IBM S/390"): "s390x",
    ("ELF64", "little", "Advanced Micro Devices X86-64"): "x86_64",
    ("ELF32", "little", "Intel 80386"): "i386",
}


def readelf_header(path: Path) -> tuple[str, str, str]:
    out = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True,
                         check=True).stdout
    found = [re.search(pattern, out) for pattern in
             (r"Class:\s+(ELF\d\d)", r"Data:\s+.*(little|big) endian", r"Machine:\s+(.+)")]
    assert all(found), out
    return found[0].group(1), found[1].group(1), found[2].group(1).strip()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def cross_rpm(tmp_path_factory: pytest.TempPathFactory,
              sample_elves: list[samples.SampleElf]) -> tuple[Path, list[samples.SampleElf]]:
    workdir = tmp_path_factory.mktemp("cross")
    elves = samples.foreign_elves(workdir / "elves")
    elves += [e for e in sample_elves if e.label in ("exec-sha1", "exec-32bit")]
    rpm = samples.build_rpm(workdir, "cross", "1.0", "1.fc40",
                            [(e.source, e.install_path) for e in elves])
    return rpm, elves


def test_class_byte_order_and_machine_are_stored_and_served(client, cross_rpm) -> None:
    rpm, elves = cross_rpm
    result = store.store_scan(scan.scan_path(rpm))
    assert result.inserted and result.rows == len(elves)
    names = set()
    for elf in elves:
        assert elf.build_id is not None
        elf_class, order, machine = readelf_header(elf.source)
        response = client.get(reverse("api-buildid", args=[elf.build_id]))
        assert response.status_code == 200, elf.label
        (match,) = response.json()["matches"]
        assert (match["path"], match["machine"], match["elf_class"], match["byte_order"]) == (
            elf.install_path, READELF_NAMES[elf_class, order, machine], int(elf_class[3:]),
            order), elf.label
        names.add(match["machine"])
        # The compatibility shape stays exactly the original one.
        compat = client.get(f"/buildids/{elf.build_id}").json()
        assert [sorted(row) for row in compat] == [["buildid", "distro", "elf", "rpm", "url"]]
    assert {"ppc64", "ppc64le", "s390", "s390x", "x86_64"} <= names


def test_header_first_reads_class_and_byte_order_from_rpms_file_classes(cross_rpm) -> None:
    """rpmbuild records libmagic's description of each file (FILECLASS); header-first import
    takes class and byte order from it, and they agree with readelf on the payload's files."""
    rpm, elves = cross_rpm
    out = subprocess.run(["rpm", "-qp", "--qf", "[%{FILENAMES}\t%{FILECLASS}\n]", str(rpm)],
                         capture_output=True, text=True, check=True).stdout
    classes = dict(line.split("\t", 1) for line in out.splitlines())
    for elf in elves:
        elf_class, order, _machine = readelf_header(elf.source)
        assert headerfirst._class_and_order(classes[elf.install_path]) == (
            int(elf_class[3:]), order == "big"), classes[elf.install_path]
