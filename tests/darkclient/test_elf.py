"""The client's ELF reader against readelf on files gcc makes in the test run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from darkclient.elf import ET_DYN, ET_REL, read_elf_bytes, read_elf_path
from darkclient.errors import FormatError, NotElfError, TruncatedError
from tests.darkclient.conftest import Program


def readelf_build_id(path: Path) -> str | None:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


def test_build_ids_agree_with_readelf(program: Program) -> None:
    for path in (program.main, program.stripped, program.debug, program.liba, program.libb):
        info = read_elf_path(path)
        assert info.build_id is not None
        assert info.build_id.hex() == readelf_build_id(path), path
        assert (info.elf_class, info.big_endian, info.machine) == (64, False, 62)
    assert read_elf_path(program.liba).elf_type == ET_DYN
    assert len(bytes.fromhex(program.libb_id)) == 16  # --build-id=md5


def test_relocatable_object_without_program_headers(program: Program, tmp_path: Path) -> None:
    obj = tmp_path / "liba.o"
    subprocess.run(["gcc", "-c", "-Wl,--build-id", "-o", str(obj), str(program.dir / "liba.c")],
                   check=True)
    # gcc -c writes no build-id note; add one the way the kernel build does (ld -r --build-id).
    linked = tmp_path / "liba.ko"
    subprocess.run(["ld", "-r", "--build-id=sha1", "-o", str(linked), str(obj)], check=True)
    info = read_elf_path(linked)
    assert info.elf_type == ET_REL
    assert info.build_id is not None and info.build_id.hex() == readelf_build_id(linked)
    assert read_elf_path(obj).build_id is None


def test_not_elf_and_truncated(program: Program) -> None:
    with pytest.raises(NotElfError):
        read_elf_bytes(b"#!/bin/sh\necho hi\n")
    with pytest.raises(NotElfError):
        read_elf_bytes(b"")
    data = program.main.read_bytes()
    with pytest.raises(TruncatedError):
        read_elf_bytes(data[:40])
    # Headers present, section and program tables gone: a clear error, not a crash.
    with pytest.raises(FormatError):
        read_elf_bytes(data[:64])


def test_corrupt_note_sizes_do_not_crash(program: Program) -> None:
    data = bytearray(program.main.read_bytes())
    i = data.find(bytes.fromhex(program.main_id))
    # The note header precedes "GNU\0" before the descriptor: make descsz absurd.
    data[i - 12:i - 8] = (0x7FFFFFFF).to_bytes(4, "little")
    info = read_elf_bytes(bytes(data))
    assert info.build_id is None
    assert read_elf_path(program.main).build_id is not None  # stream and bytes agree
    assert read_elf_bytes(program.main.read_bytes()) == read_elf_path(program.main)
