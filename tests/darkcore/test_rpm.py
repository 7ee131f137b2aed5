"""darkcore.rpm against rpmbuild's packages and rpm's own answers (rpm -qp --qf)."""

from __future__ import annotations

import io
import stat
import struct
from pathlib import Path

import pytest

from darkcore.errors import (
    DecompressionError,
    FormatError,
    IntegrityError,
    TruncatedError,
    UnsupportedPackage,
)
from darkcore.rpm import RpmReader, iter_rpm_members
from darkimport import samples
from tests.darkcore.archive_tools import SIGNATURE_DIGEST_TAGS, rename_rpm_tags, rpm_query

pytest_plugins = ["tests.darkcore.conftest_archives"]  # fixtures: real packages

KINDS = list(samples.RPM_PAYLOADS)


def reader(path: Path) -> RpmReader:
    return RpmReader(io.BytesIO(path.read_bytes()))


@pytest.mark.parametrize("kind", KINDS)
def test_header_agrees_with_rpm(rpms_by_compression: dict[str, Path], kind: str) -> None:
    path = rpms_by_compression[kind]
    rpm = reader(path)
    q = rpm_query(path, "%{NAME}|%{VERSION}|%{RELEASE}|%{EPOCH}|%{ARCH}|%{SOURCERPM}|"
                        "%{PAYLOADCOMPRESSOR}|%{SIGMD5}").split("|")
    epoch = None if q[3] == "(none)" else int(q[3])
    assert (rpm.name, rpm.version, rpm.release, rpm.epoch, rpm.arch, rpm.sourcerpm,
            rpm.sigmd5) == (q[0], q[1], q[2], epoch, q[4], q[5], q[7])
    assert rpm.payload_compressor == q[6] or (kind == "none" and q[6] == "(none)")
    assert rpm.nvra == f"demo-1.0-2.fc40.{q[4]}"


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_file_list_agrees_with_rpm(rpms_by_compression: dict[str, Path], kind: str) -> None:
    path = rpms_by_compression[kind]
    expected = [tuple(line.split("\t")) for line in rpm_query(
        path, "[%{FILENAMES}\t%{FILEMODES}\t%{FILESIZES}\t%{FILELINKTOS}\t%{FILEINODES}\n]"
    ).splitlines()]
    got = [(f.path, str(f.mode), str(f.size), f.linkto, str(f.inode))
           for f in reader(path).files()]
    assert got == expected


@pytest.mark.parametrize("kind", KINDS)
def test_payload_members_for_every_compression(rpms_by_compression: dict[str, Path],
                                               elf_by_label: dict[str, samples.SampleElf],
                                               kind: str) -> None:
    path = rpms_by_compression[kind]
    contents = {}
    for member in iter_rpm_members(io.BytesIO(path.read_bytes())):
        for name in member.names:
            contents[name.removeprefix(".")] = member.data.size
        if member.name == "./usr/lib64/libdemo.so.1.0.0":
            assert member.data.read() == elf_by_label["shared-sha1"].source.read_bytes()
    assert set(contents) == set(rpm_query(path, "[%{FILENAMES}\n]").split())
    # the hard link pair: both names, one copy of the data
    assert contents["/usr/bin/hello"] == contents["/usr/bin/hello-sha1"] > 0


def test_stripped_table_follows_rpms_hard_link_rule(rpms_by_compression: dict[str, Path]
                                                    ) -> None:
    rpm = reader(rpms_by_compression["gzip"])
    files = rpm.files()
    table = rpm.stripped_table()
    by_path = {f.name: f for f in table}
    pair = sorted((i, f.path) for i, f in enumerate(files)
                  if f.path in ("/usr/bin/hello", "/usr/bin/hello-sha1"))
    first, last = by_path[pair[0][1]], by_path[pair[1][1]]
    assert (first.size, first.nlink) == (0, 2)  # only the last index of the set has data
    assert last.size == files[pair[1][0]].size > 0 and last.nlink == 2
    assert all(stat.S_ISREG(f.mode) for f in table)


def test_source_rpm_is_unsupported(archive_dir: Path) -> None:
    srpm = samples.build_source_rpm(archive_dir)
    with pytest.raises(UnsupportedPackage, match="source rpm"):
        reader(srpm)


def header_offsets(data: bytes) -> tuple[int, int, int]:
    """(start of the signature header, start of the main header, start of the payload)."""
    count, length = struct.unpack(">II", data[96 + 8 : 96 + 16])
    main = 96 + 16 + 16 * count + length
    main += -main % 8
    count, length = struct.unpack(">II", data[main + 8 : main + 16])
    return 96, main, main + 16 + 16 * count + length


@pytest.mark.parametrize(("where", "error", "message"), [
    (lambda s, m, p: 50, TruncatedError, "rpm lead truncated"),
    (lambda s, m, p: s + 40, TruncatedError, "rpm signature header truncated"),
    (lambda s, m, p: m + 8, TruncatedError, "rpm header truncated"),
    (lambda s, m, p: p - 3, TruncatedError, "rpm header truncated"),
    (lambda s, m, p: p + 30, TruncatedError, "truncated"),
    (lambda s, m, p: -1, TruncatedError, "truncated"),
])
@pytest.mark.parametrize("kind", ["xz", "gzip", "none", "zstd"])
def test_truncated_rpms(rpms_by_compression: dict[str, Path], kind: str, where, error,
                        message: str) -> None:
    data = rpms_by_compression[kind].read_bytes()
    cut = where(*header_offsets(data))
    with pytest.raises(error, match=message):
        for member in iter_rpm_members(io.BytesIO(data[:cut])):
            member.data.read()


@pytest.mark.parametrize("kind", ["xz", "bzip2", "gzip", "zstd", "lzma"])
def test_corrupt_payload(rpms_by_compression: dict[str, Path], kind: str, tmp_path: Path) -> None:
    bad = samples.corrupt_copy(rpms_by_compression[kind], tmp_path / "bad.rpm")
    with pytest.raises((DecompressionError, FormatError)):
        for _ in iter_rpm_members(io.BytesIO(bad.read_bytes())):
            pass


def test_payload_digest_catches_corruption_no_compression_would(
        rpms_by_compression: dict[str, Path]) -> None:
    """An uncompressed payload has no checksum: a flipped byte inside a file's data is only
    seen through the digests the package carries (here PAYLOADDIGEST, checked first)."""
    data = bytearray(rpms_by_compression["none"].read_bytes())
    elf = data.index(b"\x7fELF", header_offsets(bytes(data))[2])
    data[elf + 500] ^= 0xFF
    with pytest.raises(IntegrityError, match="rpm payload corrupt: PAYLOADDIGEST"):
        for _ in iter_rpm_members(io.BytesIO(bytes(data))):
            pass


def test_bad_lead_and_header_magic(rpms_by_compression: dict[str, Path]) -> None:
    data = rpms_by_compression["gzip"].read_bytes()
    with pytest.raises(FormatError, match="bad lead magic"):
        RpmReader(io.BytesIO(b"\0" + data[1:]))
    _sig, main, _payload = header_offsets(data)
    with pytest.raises(FormatError, match="rpm header: bad magic"):
        RpmReader(io.BytesIO(data[:main] + b"\0\0\0\0" + data[main + 4 :]))


def test_index_entry_pointing_outside_the_data(rpms_by_compression: dict[str, Path]) -> None:
    # With the header digests gone (renamed tags), the damage reaches the header parser.
    data = bytearray(rename_rpm_tags(rpms_by_compression["gzip"].read_bytes(),
                                     SIGNATURE_DIGEST_TAGS))
    _sig, main, _payload = header_offsets(bytes(data))
    entry = main + 16  # first index entry: tag, type, offset, count
    data[entry + 8 : entry + 12] = struct.pack(">I", 0x7FFFFFF0)
    with pytest.raises(FormatError, match="points outside the data"):
        RpmReader(io.BytesIO(bytes(data)))


def test_absurd_header_size(rpms_by_compression: dict[str, Path]) -> None:
    data = bytearray(rpms_by_compression["gzip"].read_bytes())
    _sig, main, _payload = header_offsets(bytes(data))
    data[main + 8 : main + 12] = struct.pack(">I", 0x00FFFFFF)
    with pytest.raises(FormatError, match="absurd size"):
        RpmReader(io.BytesIO(bytes(data)))
