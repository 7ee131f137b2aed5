"""What a package SHOULD yield, found without any Darkserver code: the package is unpacked by
the real tools (bsdtar for rpm payloads, dpkg-deb for debs) and every ELF file is read with
binutils' readelf. Tests compare the importer's rows with this."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_BUILD_ID = re.compile(r"Build ID: ([0-9a-f]+)")


@dataclass(frozen=True)
class ExpectedRow:
    build_id: str
    path: str
    nvra: str


def readelf_build_id(path: Path) -> str | None:
    out = subprocess.run(["readelf", "-n", "-W", str(path)], capture_output=True, text=True).stdout
    match = _BUILD_ID.search(out)
    return match.group(1) if match else None


def package_nvra(package: Path) -> str:
    if package.suffix == ".rpm":
        return subprocess.run(
            ["rpm", "-qp", "--nosignature", "--nodigest", "--qf",
             "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}", str(package)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(package), "Package", "Version", "Architecture"],
        capture_output=True, text=True, check=True,
    ).stdout
    values = dict(line.split(": ", 1) for line in fields.strip().splitlines())
    version = values["Version"].split(":", 1)[-1]
    return f"{values['Package']}_{version}_{values['Architecture']}"


def expected_rows(package: Path) -> set[ExpectedRow]:
    nvra = package_nvra(package)
    rows: set[ExpectedRow] = set()
    with tempfile.TemporaryDirectory() as tmp:
        if package.suffix == ".rpm":
            subprocess.run(["bsdtar", "-xf", str(package), "-C", tmp], check=True)
        else:
            subprocess.run(["dpkg-deb", "-x", str(package), tmp], check=True)
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                full = Path(root) / name
                if full.is_symlink() or not full.is_file():
                    continue
                with open(full, "rb") as f:
                    if f.read(4) != b"\x7fELF":
                        continue
                build_id = readelf_build_id(full)
                if build_id:
                    rows.add(ExpectedRow(build_id, "/" + str(full.relative_to(tmp)), nvra))
    return rows
