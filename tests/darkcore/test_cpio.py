"""darkcore.cpio: real archives (bsdtar, rpm2cpio), hand-laid newc and stripped entries, and
broken ones.

The stripped (07070X) tests here use byte streams laid out by hand following rpm's cpio.c
(rpmcpioStrippedHeaderWrite) and fsm rules; test_scan reads a real stripped-payload rpm.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from darkcore.cpio import CpioMember, StrippedFile, iter_cpio
from darkcore.errors import FormatError, TruncatedError
from tests.darkcore.archive_tools import (
    Entry,
    newc,
    rpm_query,
    stripped_entry,
    tool,
)

pytest_plugins = ["tests.darkcore.conftest_archives"]  # fixtures: real packages


def members(data: bytes, table: list[StrippedFile] | None = None,
            read: bool = True) -> list[tuple[tuple[str, ...], int, bytes]]:
    """(names, mode, data) of every member, reading each member's data (or none of it)."""
    out = []
    for m in iter_cpio(io.BytesIO(data), (lambda: table) if table is not None else None):
        out.append((m.names, m.mode, m.data.read() if read else b""))
    return out


def test_newc_members_and_data() -> None:
    data = newc([Entry("./usr", mode=0o40755, ino=1),
                 Entry("./usr/bin/tool", b"\x7fELF" + b"x" * 13, mode=0o100755, ino=2),
                 Entry("./usr/bin/link", b"tool", mode=0o120777, ino=3),
                 Entry("./empty", b"", ino=4)])
    assert members(data) == [
        (("./usr",), 0o40755, b""),
        (("./usr/bin/tool",), 0o100755, b"\x7fELF" + b"x" * 13),
        (("./usr/bin/link",), 0o120777, b"tool"),
        (("./empty",), 0o100644, b""),
    ]


def test_unread_or_partly_read_data_is_skipped() -> None:
    data = newc([Entry("./a", b"A" * 1001, ino=1), Entry("./b", b"B" * 7, ino=2)])
    it = iter_cpio(io.BytesIO(data))
    first = next(it)
    assert first.data.read(3) == b"AAA"  # then left unread
    second = next(it)
    assert (second.name, second.data.read()) == ("./b", b"B" * 7)
    assert list(it) == []


def test_hard_links_are_grouped_with_the_entry_holding_the_data() -> None:
    data = newc([
        Entry("./usr/bin/a", b"", ino=7, nlink=3),
        Entry("./usr/bin/other", b"other", ino=8),
        Entry("./usr/bin/b", b"", ino=7, nlink=3),
        Entry("./usr/bin/c", b"payload", ino=7, nlink=3),
        Entry("./usr/bin/d", b"", ino=7, nlink=2, dev=(0, 1)),  # same inode, other device
        Entry("./usr/bin/e", b"dev1", ino=7, nlink=2, dev=(0, 1)),
    ])
    assert [(names, body) for names, _mode, body in members(data)] == [
        (("./usr/bin/other",), b"other"),
        (("./usr/bin/a", "./usr/bin/b", "./usr/bin/c"), b"payload"),
        (("./usr/bin/d", "./usr/bin/e"), b"dev1"),
    ]


def test_hard_linked_empty_files_still_come_out() -> None:
    data = newc([Entry("./x", b"", ino=5, nlink=2), Entry("./y", b"", ino=5, nlink=2)])
    assert [names for names, _m, _d in members(data)] == [("./x", "./y")]


def test_bsdtar_newc_with_hard_links(tmp_path: Path) -> None:
    """libarchive's newc writer, a real one: data with the last link, as rpm does."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "one").write_bytes(b"\x7fELF-one" * 100)
    os.link(root / "bin" / "one", root / "bin" / "two")
    (root / "bin" / "three").write_bytes(b"three")
    os.symlink("one", root / "bin" / "sym")
    archive = tool("bsdtar", "--format", "newc", "-cf", "-", "-C", root, ".")
    got = {frozenset(names): (stat.S_IFMT(mode), body) for names, mode, body in members(archive)}
    assert got[frozenset({"./bin/one", "./bin/two"})] == (stat.S_IFREG, b"\x7fELF-one" * 100)
    assert got[frozenset({"./bin/three"})] == (stat.S_IFREG, b"three")
    assert got[frozenset({"./bin/sym"})] == (stat.S_IFLNK, b"one")


def test_real_rpm_payload_matches_the_header(rpms_by_compression: dict[str, Path]) -> None:
    rpm = rpms_by_compression["gzip"]
    payload = tool("rpm2cpio", rpm)  # rpm2cpio writes the payload decompressed
    listed = set(rpm_query(rpm, "[%{FILENAMES}\n]").split())
    got: list[CpioMember] = []
    names: set[str] = set()
    for m in iter_cpio(io.BytesIO(payload)):
        got.append(m)
        names.update(n.removeprefix(".") for n in m.names)
    assert names == listed
    linked = [m for m in got if len(m.names) > 1]
    assert [sorted(m.names) for m in linked] == [["./usr/bin/hello", "./usr/bin/hello-sha1"]]


# --- rpm's stripped entries ------------------------------------------------------------------

TABLE = [
    StrippedFile("/usr/bin", 0o40755, 0, 1, 1, 1),
    StrippedFile("/usr/bin/a", 0o100755, 0, 2, 1, 2),  # hard link: data with the last index
    StrippedFile("/usr/bin/b", 0o100755, 9, 2, 1, 2),
    StrippedFile("/usr/bin/s", 0o120777, 1, 3, 1, 1),  # symlink: its target is the data
    StrippedFile("/usr/bin/c", 0o100644, 5, 4, 1, 1),
]


def stripped_archive() -> bytes:
    body = b"".join([stripped_entry(0, b""), stripped_entry(1, b""),
                     stripped_entry(2, b"\x7fELFlinks"), stripped_entry(3, b"b"),
                     stripped_entry(4, b"ccccc")])
    return body + newc([])  # rpm ends a stripped archive with a newc trailer


def test_stripped_entries_take_everything_from_the_table() -> None:
    assert members(stripped_archive(), TABLE) == [
        (("/usr/bin",), 0o40755, b""),
        (("/usr/bin/a", "/usr/bin/b"), 0o100755, b"\x7fELFlinks"),
        (("/usr/bin/s",), 0o120777, b"b"),
        (("/usr/bin/c",), 0o100644, b"ccccc"),
    ]


def test_stripped_entries_unread_are_skipped() -> None:
    assert [names for names, _m, _d in members(stripped_archive(), TABLE, read=False)][-1] == (
        "/usr/bin/c",)


def test_stripped_table_is_only_fetched_when_needed() -> None:
    calls = []

    def table() -> list[StrippedFile]:
        calls.append(1)
        return TABLE

    list(iter_cpio(io.BytesIO(newc([Entry("./x", b"x")])), table))
    assert calls == []
    list(iter_cpio(io.BytesIO(stripped_archive()), table))
    assert calls == [1]


def test_stripped_index_out_of_range() -> None:
    with pytest.raises(FormatError, match="file index 9 outside the header's 5 files"):
        members(stripped_entry(9, b"") + newc([]), TABLE)


def test_stripped_entry_outside_an_rpm() -> None:
    with pytest.raises(FormatError, match="stripped entry outside an rpm payload"):
        members(stripped_archive())


def test_stripped_absurd_size_from_the_header() -> None:
    table = [StrippedFile("/huge", 0o100644, 1 << 50, 1, 1, 1)]
    with pytest.raises(FormatError, match="absurd size"):
        members(stripped_entry(0, b"") + newc([]), table)


# --- broken archives -------------------------------------------------------------------------


def test_bad_magic() -> None:
    with pytest.raises(FormatError, match="bad magic b'070707'"):
        members(b"070707" + b"0" * 200)


@pytest.mark.parametrize("cut", [3, 50, 112, 115, 120, -1])
def test_truncated_anywhere(cut: int) -> None:
    data = newc([Entry("./usr/bin/tool", b"T" * 10)])
    with pytest.raises(TruncatedError):
        members(data[:cut])


def test_missing_trailer() -> None:
    with pytest.raises(TruncatedError, match="without its trailer"):
        members(newc([Entry("./a", b"a")], trailer=False))


def test_non_hex_field() -> None:
    data = bytearray(newc([Entry("./a", b"a")]))
    data[6:14] = b"zzzzzzzz"
    with pytest.raises(FormatError, match="not hexadecimal"):
        members(bytes(data))


def test_absurd_name_size() -> None:
    data = bytearray(newc([Entry("./a", b"a")]))
    data[94:102] = b"%08x" % (1 << 30)
    with pytest.raises(FormatError, match="absurd name size"):
        members(bytes(data))


def test_name_without_nul() -> None:
    data = bytearray(newc([Entry("./abc", b"a")]))
    data[110 + 5] = ord("x")  # overwrite the terminating NUL
    with pytest.raises(FormatError, match="not NUL-terminated"):
        members(bytes(data))
