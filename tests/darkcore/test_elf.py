"""darkcore.elf against binutils readelf (and eu-readelf, pyelftools) on real ELF files,
and on real files with their headers or notes broken byte by byte."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from darkcore import elf as elfnote
from darkcore.elf import (
    BadElfHeaderError,
    ElfInfo,
    elf_type_name,
    machine_name,
    read_elf,
    read_elf_bytes,
    read_elf_path,
)
from darkcore.errors import FormatError, TruncatedError
from darkimport import samples

READELF_MACHINES = {"Advanced Micro Devices X86-64": 62, "Intel 80386": 3, "None": 0}


def readelf_header(path: Path) -> dict[str, str]:
    out = subprocess.run(["readelf", "-h", "-W", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return dict(re.findall(r"^\s+(Class|Data|Type|Machine):\s+(.*)$", out, re.M))


def eu_readelf_build_id(path: Path) -> str | None:
    out = subprocess.run(["eu-readelf", "-n", str(path)], capture_output=True, text=True).stdout
    match = re.search(r"Build ID: ([0-9a-f]+)", out)
    return match.group(1) if match else None


def pyelftools_build_id(path: Path) -> str | None:
    with open(path, "rb") as f:
        for section in ELFFile(f).iter_sections():
            if section["sh_type"] == "SHT_NOTE":
                for note in section.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID":
                        return str(note["n_desc"])
    return None


def hex_id(info: ElfInfo | None) -> str | None:
    assert info is not None
    return info.build_id.hex() if info.build_id is not None else None


def note(owner: bytes, ntype: int, desc: bytes, order: str = "<", align: int = 4) -> bytes:
    """One note entry laid out as the gABI says (and readelf reads)."""
    def pad(n: int) -> int:
        return (n + align - 1) & -align
    head = struct.pack(order + "III", len(owner), len(desc), ntype) + owner
    head += b"\0" * (pad(len(head)) - len(head))
    body = head + desc
    return body + b"\0" * (pad(len(body)) - len(body))


def objcopy_elf(tmp_path: Path, fmt: str, sections: dict[str, bytes]) -> Path:
    """A real ELF file written by objcopy (any class and byte order) holding these sections;
    binutils names starting with .note get SHT_NOTE."""
    (tmp_path / "payload.bin").write_bytes(b"payload")
    args = ["objcopy", "-I", "binary", "-O", fmt]
    for index, (name, content) in enumerate(sections.items()):
        (tmp_path / f"s{index}.bin").write_bytes(content)
        args += ["--add-section", f"{name}={tmp_path / f's{index}.bin'}"]
    out = tmp_path / f"crafted-{fmt}.o"
    subprocess.run([*args, str(tmp_path / "payload.bin"), str(out)], check=True)
    return out


def section_at(path: Path, name: str) -> tuple[int, int, int]:
    """(file offset of the section's header, sh_offset, sh_size) of section ``name``."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for index, section in enumerate(elf.iter_sections()):
            if section.name == name:
                header_at = elf["e_shoff"] + index * elf["e_shentsize"]
                return header_at, section["sh_offset"], section["sh_size"]
    raise AssertionError(f"no section {name} in {path}")


def patched(src: Path, out: Path, *patches: tuple[int, str, int]) -> Path:
    """A copy of ``src`` with struct-packed little-endian values written at offsets."""
    data = bytearray(src.read_bytes())
    for offset, code, value in patches:
        struct.pack_into("<" + code, data, offset, value)
    out.write_bytes(bytes(data))
    return out


# --- real files: the reader agrees with the reference tools -------------------------------------

def test_every_sample_matches_readelf(sample_elves: list[samples.SampleElf]) -> None:
    assert {e.kind for e in sample_elves} >= {"exec", "shared", "relocatable", "debug"}
    for elf in sample_elves:
        info = read_elf_path(elf.source)
        assert hex_id(info) == elf.build_id, elf.label
        header = readelf_header(elf.source)
        assert info is not None
        assert f"ELF{info.elf_class}" == header["Class"] == f"ELF{elf.elf_class}", elf.label
        assert not info.big_endian and "little endian" in header["Data"]
        assert elf_type_name(info.elf_type) == header["Type"].split()[0], elf.label
        assert info.machine == READELF_MACHINES[header["Machine"]], elf.label


def test_all_build_id_styles_are_present_with_their_lengths(
        elf_by_label: dict[str, samples.SampleElf]) -> None:
    lengths = {label: len(e.build_id or "") // 2 for label, e in elf_by_label.items()}
    assert lengths["exec-sha1"] == 20 and lengths["exec-md5"] == 16
    assert lengths["exec-uuid"] == 16 and lengths["exec-none"] == 0
    assert elf_by_label["exec-hex8"].build_id == samples.HEX_IDS["hex8"]
    assert elf_by_label["exec-hex32"].build_id == samples.HEX_IDS["hex32"]
    assert lengths["relocatable-sha1"] == 20 and lengths["relocatable-none"] == 0
    assert read_elf_path(elf_by_label["exec-none"].source) == ElfInfo(None, 64, False, 3, 62)


def test_bytes_stream_and_path_readers_agree(sample_elves: list[samples.SampleElf]) -> None:
    for elf in sample_elves:
        data = elf.source.read_bytes()
        by_path = read_elf_path(elf.source)
        assert read_elf_bytes(data) == by_path
        assert read_elf_bytes(memoryview(data)) == by_path
        # A stream read starts at the current position: an ELF file inside a bigger stream.
        stream = io.BytesIO(b"x" * 100 + data)
        stream.seek(100)
        assert read_elf(stream) == by_path


def test_eu_readelf_agrees_on_debug_files_and_kernel_module(
        elf_by_label: dict[str, samples.SampleElf]) -> None:
    for label in ("debug-eu-strip", "debug-objcopy", "relocatable-sha1", "shared-sha1"):
        elf = elf_by_label[label]
        assert elf.build_id is not None
        assert eu_readelf_build_id(elf.source) == elf.build_id == hex_id(read_elf_path(elf.source))


def test_pyelftools_agrees_on_well_formed_notes(sample_elves: list[samples.SampleElf]) -> None:
    for elf in sample_elves:
        assert pyelftools_build_id(elf.source) == hex_id(read_elf_path(elf.source)), elf.label


def test_32bit_sample(elf_by_label: dict[str, samples.SampleElf]) -> None:
    if "exec-32bit" not in elf_by_label:
        pytest.skip("gcc here cannot target i386 at all")
    elf = elf_by_label["exec-32bit"]
    info = read_elf_path(elf.source)
    assert info is not None and info.elf_class == 32 and info.machine == 3
    assert info.build_id is not None and info.build_id.hex() == elf.build_id


def test_package_note_is_read_as_ld_wrote_it(elf_by_label: dict[str, samples.SampleElf]) -> None:
    path = elf_by_label["exec-sha1"].source
    info = read_elf_path(path)
    assert info is not None and info.package_note is not None
    assert json.loads(info.package_note) == samples.PACKAGE_NOTE
    readelf = subprocess.run(["readelf", "-n", "-W", str(path)], capture_output=True,
                             text=True).stdout
    assert f"Packaging Metadata: {info.package_note}" in readelf
    assert read_elf_path(elf_by_label["exec-md5"].source) == ElfInfo(
        bytes.fromhex(elf_by_label["exec-md5"].build_id or ""), 64, False, 3, 62, None)


def test_debug_file_with_stale_program_headers(
        elf_by_label: dict[str, samples.SampleElf], tmp_path: Path) -> None:
    """eu-strip -f keeps the original program headers in the .debug file: its PT_NOTE offsets
    no longer point at the notes. Make one point at a decoy build-id note: readelf and we
    still report the section's id."""
    elf = elf_by_label["debug-eu-strip"]
    with open(elf.source, "rb") as f:
        parsed = ELFFile(f)
        section = parsed.get_section_by_name(".note.gnu.build-id")
        assert section["sh_type"] == "SHT_NOTE"  # kept with contents, not NOBITS
        index, segment = next(
            (i, s) for i, s in enumerate(parsed.iter_segments()) if s["p_type"] == "PT_NOTE"
            and s["p_vaddr"] <= section["sh_addr"] < s["p_vaddr"] + s["p_memsz"])
        # The segment that maps the build-id note points elsewhere in this file.
        assert segment["p_offset"] + section["sh_addr"] - segment["p_vaddr"] != section["sh_offset"]
        ph_at, ph_size = parsed["e_phoff"], parsed["e_phentsize"]
    data = elf.source.read_bytes()
    decoy = note(b"GNU\0", 3, b"\xdd" * 20)
    at = ph_at + index * ph_size
    crafted = tmp_path / "stale.debug"
    crafted.write_bytes(data + decoy)
    patched(crafted, crafted, (at + 8, "Q", len(data)), (at + 32, "Q", len(decoy)),
            (at + 40, "Q", len(decoy)))
    assert samples.readelf_build_id(crafted) == elf.build_id
    assert hex_id(read_elf_path(crafted)) == elf.build_id


def test_segments_are_read_when_there_are_no_section_headers(
        elf_by_label: dict[str, samples.SampleElf], tmp_path: Path) -> None:
    elf = elf_by_label["exec-sha1"]
    # e_shoff = 0, e_shnum = 0, e_shstrndx = 0: what sstrip-style tools leave.
    bare = patched(elf.source, tmp_path / "no-sections", (0x28, "Q", 0), (0x3C, "H", 0),
                   (0x3E, "H", 0))
    assert samples.readelf_build_id(bare) == elf.build_id
    info = read_elf_path(bare)
    assert hex_id(info) == elf.build_id
    assert info is not None and info.package_note is not None  # the FDO note is in PT_NOTE too


def test_relocatable_object_has_no_program_headers(
        elf_by_label: dict[str, samples.SampleElf]) -> None:
    elf = elf_by_label["relocatable-sha1"]
    assert "There are no program headers" in subprocess.run(
        ["readelf", "-l", str(elf.source)], capture_output=True, text=True).stdout
    assert read_elf_path(elf.source) == ElfInfo(bytes.fromhex(elf.build_id or ""), 64, False, 1,
                                                62)


@pytest.mark.parametrize(("fmt", "order", "elf_class"),
                         [("elf64-big", ">", 64), ("elf32-big", ">", 32),
                          ("elf32-little", "<", 32)])
def test_any_class_and_byte_order(tmp_path: Path, fmt: str, order: str, elf_class: int) -> None:
    build_id = bytes(range(100, 120))
    package = b'{"type":"deb","name":"be"}\0'
    path = objcopy_elf(tmp_path, fmt, {
        ".note.gnu.build-id": note(b"GNU\0", 3, build_id, order),
        ".note.package": note(b"FDO\0", 0xCAFE1A7E, package, order),
    })
    assert samples.readelf_build_id(path) == build_id.hex()
    assert read_elf_path(path) == ElfInfo(build_id, elf_class, order == ">", 1, 0,
                                          '{"type":"deb","name":"be"}')


def test_eight_byte_aligned_note_section(tmp_path: Path) -> None:
    """In an 8-aligned section the descriptor and the next note start on 8-byte boundaries."""
    build_id = bytes(range(1, 21))
    content = note(b"GNU\0", 5, b"\x01\x00\x00\xc0\x04\x00\x00\x00\x01\x00\x00\x00", align=8)
    content += note(b"GNU\0", 3, build_id, align=8)
    path = objcopy_elf(tmp_path, "elf64-little", {".note.gnu.build-id": content})
    header_at, _, _ = section_at(path, ".note.gnu.build-id")
    patched(path, path, (header_at + 48, "Q", 8))  # sh_addralign = 8 (objcopy leaves 1)
    assert samples.readelf_build_id(path) == build_id.hex()
    assert hex_id(read_elf_path(path)) == build_id.hex()
    # Read with 4-byte alignment the same bytes give a different layout, and no such id.
    patched(path, path, (header_at + 48, "Q", 4))
    assert hex_id(read_elf_path(path)) != build_id.hex()


@pytest.mark.parametrize(("length", "kept"), [(64, True), (65, False), (4, True), (3, False),
                                              (0, False)])
def test_build_id_length_bounds(tmp_path: Path, length: int, kept: bool) -> None:
    build_id = bytes(range(7, 7 + length))
    path = objcopy_elf(tmp_path, "elf64-little",
                       {".note.gnu.build-id": note(b"GNU\0", 3, build_id)})
    info = read_elf_path(path)
    assert info is not None and info.build_id == (build_id if kept else None)


def test_note_from_another_owner_or_type_is_not_a_build_id(tmp_path: Path) -> None:
    path = objcopy_elf(tmp_path, "elf64-little", {".note.a": note(b"GNU\0", 4, b"\1" * 20),
                                                  ".note.b": note(b"Go\0\0", 3, b"\2" * 20),
                                                  ".note.c": note(b"GNU\0", 3, b"\3" * 20)})
    assert hex_id(read_elf_path(path)) == "03" * 20


@pytest.mark.parametrize("text", [b'not json\0', b'["a list"]\0', b'{"no": "terminator"}',
                                  b'{"bad": "\xff"}\0', b'{"x": 1}\0garbage'])
def test_invalid_package_note_is_dropped(tmp_path: Path, text: bytes) -> None:
    path = objcopy_elf(tmp_path, "elf64-little", {
        ".note.gnu.build-id": note(b"GNU\0", 3, b"\4" * 20),
        ".note.package": note(b"FDO\0", 0xCAFE1A7E, text),
    })
    assert read_elf_path(path) == ElfInfo(b"\4" * 20, 64, False, 1, 0, None)


# --- broken files -------------------------------------------------------------------------------

@pytest.fixture
def hello(elf_by_label: dict[str, samples.SampleElf]) -> samples.SampleElf:
    return elf_by_label["exec-sha1"]


def test_descsz_running_past_the_section_gives_no_build_id(hello: samples.SampleElf,
                                                           tmp_path: Path) -> None:
    _, offset, size = section_at(hello.source, ".note.gnu.build-id")
    bad = patched(hello.source, tmp_path / "descsz", (offset + 4, "I", size))
    # pyelftools 0.33 returns the bytes of the next section as the id; readelf refuses.
    assert samples.readelf_build_id(bad) is None
    assert eu_readelf_build_id(bad) is None
    info = read_elf_path(bad)
    assert info is not None and info.build_id is None
    assert info.package_note is not None  # the other note sections are still read


@pytest.mark.parametrize("namesz", [5, 2, 0x7FFFFFF0, 0xFFFFFFFF])
def test_wrong_namesz_gives_no_build_id(hello: samples.SampleElf, tmp_path: Path,
                                        namesz: int) -> None:
    _, offset, _ = section_at(hello.source, ".note.gnu.build-id")
    bad = patched(hello.source, tmp_path / "namesz", (offset, "I", namesz))
    assert samples.readelf_build_id(bad) is None
    assert hex_id(read_elf_bytes(bad.read_bytes())) is None


def test_owner_without_its_nul_is_accepted_as_readelf_does(hello: samples.SampleElf,
                                                            tmp_path: Path) -> None:
    _, offset, _ = section_at(hello.source, ".note.gnu.build-id")
    short = patched(hello.source, tmp_path / "namesz3", (offset, "I", 3))  # "GNU", same layout
    assert samples.readelf_build_id(short) == eu_readelf_build_id(short) == hello.build_id
    assert hex_id(read_elf_path(short)) == hello.build_id


def test_zero_descsz_gives_no_build_id(hello: samples.SampleElf, tmp_path: Path) -> None:
    _, offset, _ = section_at(hello.source, ".note.gnu.build-id")
    bad = patched(hello.source, tmp_path / "zero", (offset + 4, "I", 0))
    assert hex_id(read_elf_path(bad)) is None


@pytest.mark.parametrize("keep", [0x3F, 40, 16, 5])
def test_truncated_header_raises(hello: samples.SampleElf, keep: int) -> None:
    data = hello.source.read_bytes()[:keep]
    with pytest.raises(TruncatedError):
        read_elf_bytes(data)
    with pytest.raises(TruncatedError):
        read_elf(io.BytesIO(data))


def test_section_header_table_past_eof_raises(hello: samples.SampleElf, tmp_path: Path) -> None:
    data = hello.source.read_bytes()
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    with pytest.raises(TruncatedError, match="past the end"):
        read_elf_bytes(data[:shoff + 100])  # cut inside the table
    moved = patched(hello.source, tmp_path / "moved", (0x28, "Q", len(data) - 64))
    with pytest.raises(TruncatedError):
        read_elf_path(moved)


def test_note_section_past_eof_raises(hello: samples.SampleElf, tmp_path: Path) -> None:
    header_at, _, _ = section_at(hello.source, ".note.gnu.build-id")
    bad = patched(hello.source, tmp_path / "far", (header_at + 24, "Q", 1 << 40))
    with pytest.raises(TruncatedError):
        read_elf_path(bad)


@pytest.mark.parametrize(("offset", "code", "value", "message"),
                         [(4, "B", 3, "class"), (5, "B", 0, "encoding"),
                          (0x3A, "H", 12, "section header entry size")])
def test_impossible_header_fields_raise(hello: samples.SampleElf, tmp_path: Path, offset: int,
                                        code: str, value: int, message: str) -> None:
    bad = patched(hello.source, tmp_path / "bad", (offset, code, value))
    with pytest.raises(BadElfHeaderError, match=message):
        read_elf_path(bad)
    assert issubclass(BadElfHeaderError, FormatError)


@pytest.mark.parametrize("data", [b"", b"\x7fEL", b"#!/bin/sh\necho hi\n", b"MZ" + b"\0" * 200,
                                  b"\x7felf" + b"\0" * 60])
def test_not_elf_returns_none(data: bytes) -> None:
    assert read_elf_bytes(data) is None
    assert read_elf(io.BytesIO(data)) is None


def test_iter_notes_is_strict() -> None:
    good = note(b"GNU\0", 3, b"\1" * 20)
    assert [(o, t, bytes(d)) for o, t, d in elfnote.iter_notes(good)] == [
        (b"GNU\0", 3, b"\1" * 20)]
    with pytest.raises(elfnote.BadNoteError):
        list(elfnote.iter_notes(good[:-4]))
    with pytest.raises(elfnote.BadNoteError):
        list(elfnote.iter_notes(good + b"\1\2"))


# --- names --------------------------------------------------------------------------------------

def test_machine_and_type_names() -> None:
    assert [machine_name(m) for m in (62, 183, 3, 40, 21, 22, 243)] == [
        "x86_64", "aarch64", "i386", "arm", "ppc64", "s390", "riscv"]
    assert machine_name(22, 64) == "s390x" and machine_name(21, 64, False) == "ppc64le"
    assert [machine_name(21, 64, True), machine_name(22, 32, True), machine_name(22, 64, True),
            machine_name(8, 32, False), machine_name(8, 64, True), machine_name(62, 64, False),
            machine_name(183, 64, True)] == [
        "ppc64", "s390", "s390x", "mipsel", "mips64", "x86_64", "aarch64_be"]
    assert machine_name(243, 64) == "riscv64" and machine_name(62, 32) == "x32"
    assert machine_name(9999) == "EM_9999"
    assert [elf_type_name(t) for t in (1, 2, 3, 4, 0, 0xFE00)] == [
        "REL", "EXEC", "DYN", "CORE", "NONE", "ET_0xfe00"]
