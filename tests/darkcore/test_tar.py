"""The streaming tar reader against Python's tarfile as the writer, in every header format."""

from __future__ import annotations

import io
import tarfile

import pytest

from darkcore.errors import FormatError, TruncatedError
from darkcore.tar import iter_tar

LONG = "usr/lib/" + "very-long-directory-name/" * 8 + "libthing.so.1"


def make_tar(fmt: int, long: str = LONG, link_to: str = LONG) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, body in (("./usr/bin/short", b"\x7fELF" + b"a" * 1000), (long, b"b" * 513)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("./usr/bin/hard")
        link.type, link.linkname = tarfile.LNKTYPE, link_to
        tar.addfile(link)
        sym = tarfile.TarInfo("./usr/bin/sym")
        sym.type, sym.linkname = tarfile.SYMTYPE, "short"
        tar.addfile(sym)
        directory = tarfile.TarInfo("./usr/share/")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
    return out.getvalue()


# ustar has no long names: it splits a path into prefix + name (155 + 100 bytes), and a link
# target must fit in 100 bytes.
USTAR_LONG = "usr/lib/" + "d" * 90 + "/libthing.so.1"
CASES = [(tarfile.GNU_FORMAT, LONG, LONG), (tarfile.PAX_FORMAT, LONG, LONG),
         (tarfile.USTAR_FORMAT, USTAR_LONG, "./usr/bin/short")]


@pytest.mark.parametrize(("fmt", "long", "link_to"), CASES)
def test_members_equal_tarfiles_reading(fmt: int, long: str, link_to: str) -> None:
    blob = make_tar(fmt, long, link_to)
    ours = [(e.name, e.type, e.linkname, e.data.read() if e.data else b"")
            for e in iter_tar(io.BytesIO(blob))]
    kinds = {tarfile.REGTYPE: "file", tarfile.LNKTYPE: "hardlink", tarfile.SYMTYPE: "symlink",
             tarfile.DIRTYPE: "dir"}
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        theirs = [(m.name, kinds[m.type], m.linkname,
                   tar.extractfile(m).read() if m.isreg() else b"") for m in tar]
    assert ours == theirs
    assert ours[1][0] == long and ours[2][2] == link_to


def test_partly_read_members_are_skipped_correctly() -> None:
    entries = iter_tar(io.BytesIO(make_tar(tarfile.GNU_FORMAT)))
    first = next(entries)
    assert first.data is not None and first.data.read(4) == b"\x7fELF"
    assert next(entries).name == LONG


def test_a_corrupt_header_is_an_error_not_the_end() -> None:
    blob = bytearray(make_tar(tarfile.GNU_FORMAT))
    second = 512 + 1024  # header, 1000 data bytes padded to 1024
    blob[second + 10] ^= 0xFF
    with pytest.raises(FormatError, match="checksum"):
        list(iter_tar(io.BytesIO(bytes(blob))))


@pytest.mark.parametrize("cut", [100, 512 + 300, 512 + 1024 + 200])
def test_truncation_is_detected(cut: int) -> None:
    blob = make_tar(tarfile.GNU_FORMAT)[:cut]
    with pytest.raises(TruncatedError):
        for entry in iter_tar(io.BytesIO(blob)):
            if entry.data is not None:
                entry.data.read()
