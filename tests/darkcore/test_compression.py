"""darkcore.compression against the real command-line compressors' output."""

from __future__ import annotations

import io
import random
import shutil
import zlib
from pathlib import Path

import pytest

from darkcore import compression
from darkcore.compression import (
    BoundedReader,
    DigestReader,
    drain,
    open_decompressed,
    read_exact,
    sniff_compression,
)
from darkcore.errors import DecompressionError, PackageError, TruncatedError
from tests.darkcore.archive_tools import tool

# The command that makes each kind, as packagers' tools do.
COMPRESSORS = {
    "gzip": ["gzip", "-9nc"],
    "bzip2": ["bzip2", "-9c"],
    "xz": ["xz", "-6c", "--check=crc64"],
    "lzma": ["xz", "--format=lzma", "-6c"],
    "zstd": ["zstd", "-19qc"],
}
# Both paths for the kinds that have an external tool, the in-process one for the rest.
MODES = [(k, False) for k in COMPRESSORS] + [("xz", True), ("zstd", True)]


@pytest.fixture(scope="module")
def plain() -> bytes:
    """About 2 MB of real, mixed data (an ELF binary, text, zeros, noise): several xz/zstd blocks.
    The noise is seeded: where test_corrupt_data's flipped bytes land decides whether a
    bzip2 decoder sees corrupt data or a stream cut short, so it must not change per run."""
    parts = [Path(shutil.which("xz") or "/bin/sh").read_bytes(), Path(__file__).read_bytes(),
             bytes(300_000), random.Random(20261207).randbytes(200_000)]
    return b"".join(parts) * 3


@pytest.fixture(scope="module")
def packed(plain: bytes) -> dict[str, bytes]:
    return {kind: tool(*argv, stdin=plain) for kind, argv in COMPRESSORS.items()}


def read_all(data: bytes, kind: str, external: bool) -> bytes:
    reader = open_decompressed(io.BytesIO(data), kind, external=external)
    try:
        out = bytearray()
        while chunk := reader.read(65_536):
            out += chunk
        return bytes(out)
    finally:
        reader.close()


@pytest.mark.parametrize(("kind", "external"), MODES)
def test_round_trip_with_the_real_tools(packed: dict[str, bytes], plain: bytes, kind: str,
                                        external: bool) -> None:
    assert read_all(packed[kind], kind, external) == plain


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_sniff_compression(packed: dict[str, bytes], kind: str) -> None:
    assert sniff_compression(packed[kind][:16]) == kind


def test_sniff_plain_archives_and_unknown() -> None:
    assert sniff_compression(b"070701000000") == "none"
    assert sniff_compression(b"07070X00000001") == "none"
    assert sniff_compression(b"hello world") == ""
    assert sniff_compression(b"") == ""


@pytest.mark.parametrize(("kind", "external"), MODES)
@pytest.mark.parametrize("fraction", [0.0001, 0.5, 0.999])
def test_truncated_stream_is_detected_at_eof(packed: dict[str, bytes], kind: str,
                                              external: bool, fraction: float) -> None:
    data = packed[kind]
    cut = max(1, int(len(data) * fraction))
    if cut == len(data):
        cut -= 1
    with pytest.raises(TruncatedError, match="truncated"):
        read_all(data[:cut], kind, external)


@pytest.mark.parametrize(("kind", "external"), MODES)
def test_last_byte_missing(packed: dict[str, bytes], kind: str, external: bool) -> None:
    """The stream's end marker/checksum is the last thing in it: losing it must not pass."""
    with pytest.raises(TruncatedError):
        read_all(packed[kind][:-1], kind, external)


@pytest.mark.parametrize(("kind", "external"), MODES)
def test_corrupt_data(packed: dict[str, bytes], kind: str, external: bool) -> None:
    data = bytearray(packed[kind])
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    with pytest.raises(DecompressionError, match=f"corrupt {kind} data"):
        read_all(bytes(data), kind, external)


@pytest.mark.parametrize(("kind", "external"), [m for m in MODES if m[0] != "lzma"])
def test_concatenated_streams_are_followed(plain: bytes, kind: str, external: bool) -> None:
    """gzip members, xz/bzip2 streams and zstd frames may be concatenated (pigz, pixz...)."""
    first = tool(*COMPRESSORS[kind], stdin=plain[:1000])
    second = tool(*COMPRESSORS[kind], stdin=plain[1000:5000])
    assert read_all(first + second, kind, external) == plain[:5000]


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "lzma"])
def test_trailing_zero_padding_is_accepted_and_garbage_is_not(packed: dict[str, bytes],
                                                               plain: bytes, kind: str) -> None:
    assert read_all(packed[kind] + bytes(4096), kind, False) == plain
    with pytest.raises(DecompressionError):
        read_all(packed[kind] + b"\0\0\0\0garbage", kind, False)


def test_zstd_skippable_frame_and_checksum(plain: bytes) -> None:
    skippable = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello"
    frame = tool("zstd", "-3qc", "--check", stdin=plain[:100_000])
    assert read_all(skippable + frame, "zstd", False) == plain[:100_000]
    with pytest.raises(TruncatedError):  # cut inside the 4-byte content checksum
        read_all(skippable + frame[:-2], "zstd", False)
    with pytest.raises(TruncatedError):  # nothing at all is not a zstd stream
        read_all(b"", "zstd", False)


def test_output_is_bounded_by_the_caller() -> None:
    """200 MB of zeros compress to a few kB: a read returns what was asked, never all of it."""
    bomb = tool("zstd", "-3qc", stdin=bytes(200 << 20))
    raw = compression._ZstdReader(io.BytesIO(bomb))
    buffer = bytearray(4096)
    assert raw.readinto(buffer) == 4096
    xz_bomb = tool("xz", "-1c", stdin=bytes(50 << 20))
    raw2 = compression._DecompressorReader(io.BytesIO(xz_bomb), "xz")
    assert raw2.readinto(buffer) <= 4096


def test_none_is_the_stream_itself() -> None:
    stream = io.BytesIO(b"abc")
    assert open_decompressed(stream, "none") is stream


def test_unknown_kind() -> None:
    with pytest.raises(DecompressionError, match="unsupported payload compression 'lz4'"):
        open_decompressed(io.BytesIO(b""), "lz4")


@pytest.fixture(scope="module")
def multiblock_xz() -> tuple[bytes, bytes]:
    """40 MB in 16 MiB blocks by xz's threaded encoder (as dpkg-deb and xz -T write them)."""
    plain = (bytes(range(256)) * 4096 + bytes(1 << 20)) * 20
    return plain, tool("xz", "-1", "-T2", "--block-size=16MiB", "-c", stdin=plain)


def kind_of_reader(data: bytes, kind: str) -> type:
    reader = open_decompressed(io.BytesIO(data), kind)
    try:
        return type(reader.raw)  # type: ignore[attr-defined]
    finally:
        reader.close()


def test_default_policy_uses_xz_only_for_big_multi_block_streams(
        monkeypatch: pytest.MonkeyPatch, packed: dict[str, bytes],
        multiblock_xz: tuple[bytes, bytes]) -> None:
    monkeypatch.delenv("DARKSERVER_EXTERNAL_DECOMPRESS", raising=False)
    plain, multi = multiblock_xz
    assert compression.xz_first_block_size(multi[:32]) == 16 << 20
    assert compression.xz_first_block_size(packed["xz"][:32]) is None  # single-threaded xz
    assert kind_of_reader(multi, "xz") is compression._ExternalReader
    assert kind_of_reader(packed["xz"], "xz") is compression._DecompressorReader
    assert kind_of_reader(packed["zstd"], "zstd") is compression._ZstdReader
    assert kind_of_reader(packed["gzip"], "gzip") is compression._DecompressorReader
    reader = open_decompressed(io.BytesIO(multi), "xz")
    assert reader.read() == plain
    reader.close()


def test_environment_overrides_the_policy(monkeypatch: pytest.MonkeyPatch,
                                          packed: dict[str, bytes],
                                          multiblock_xz: tuple[bytes, bytes]) -> None:
    monkeypatch.setenv("DARKSERVER_EXTERNAL_DECOMPRESS", "0")
    assert kind_of_reader(multiblock_xz[1], "xz") is compression._DecompressorReader
    monkeypatch.setenv("DARKSERVER_EXTERNAL_DECOMPRESS", "1")
    assert kind_of_reader(packed["zstd"], "zstd") is compression._ExternalReader
    assert kind_of_reader(packed["xz"], "xz") is compression._ExternalReader
    assert kind_of_reader(packed["bzip2"], "bzip2") is compression._DecompressorReader


def test_missing_external_tool(monkeypatch: pytest.MonkeyPatch, packed: dict[str, bytes],
                               plain: bytes) -> None:
    monkeypatch.setitem(compression.EXTERNAL_TOOLS, "xz", ["no-such-xz-tool", "-dc"])
    with pytest.raises(DecompressionError, match="no external decompressor for xz"):
        open_decompressed(io.BytesIO(packed["xz"]), "xz", external=True)
    # Asked for whenever possible, it falls back to the in-process decompressor.
    monkeypatch.setenv("DARKSERVER_EXTERNAL_DECOMPRESS", "1")
    reader = open_decompressed(io.BytesIO(packed["xz"]), "xz")
    assert isinstance(reader.raw, compression._DecompressorReader)  # type: ignore[attr-defined]
    assert reader.read() == plain


class FailingSource(io.RawIOBase):
    """Gives some bytes, then fails as a truncated container would."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        n = self._data.readinto(buffer)
        if not n:
            raise TruncatedError("deb member 'data.tar.xz' truncated")
        return n


@pytest.mark.parametrize(("kind", "external"), [("xz", True), ("zstd", True), ("xz", False)])
def test_input_errors_come_through_unchanged(packed: dict[str, bytes], kind: str,
                                             external: bool) -> None:
    source = io.BufferedReader(FailingSource(packed[kind][: len(packed[kind]) // 2]))
    with pytest.raises(TruncatedError, match="deb member 'data.tar.xz' truncated"):
        read_all_from(source, kind, external)


def read_all_from(source: io.BufferedReader, kind: str, external: bool) -> None:
    reader = open_decompressed(source, kind, external=external)  # type: ignore[arg-type]
    try:
        drain(reader)
    finally:
        reader.close()


def test_closing_early_stops_the_external_process(packed: dict[str, bytes]) -> None:
    reader = open_decompressed(io.BytesIO(packed["xz"] * 20), "xz", external=True)
    assert reader.read(10)
    raw = reader.raw  # type: ignore[attr-defined]
    reader.close()
    assert raw._proc.returncode is not None
    assert not raw._thread.is_alive()


def test_bounded_reader() -> None:
    stream = io.BytesIO(b"0123456789")
    part = BoundedReader(stream, 4, "member 'x'")
    assert part.read(3) == b"012"
    assert part.read() == b"3"
    assert part.read() == b""
    assert stream.read(2) == b"45"
    short = BoundedReader(io.BytesIO(b"abc"), 10, "member 'y'")
    with pytest.raises(TruncatedError, match="member 'y' truncated"):
        short.skip()
    with pytest.raises(TruncatedError, match="header truncated: wanted 8 bytes, got 3"):
        read_exact(io.BytesIO(b"abc"), 8, "header")


def test_sniff_puts_the_bytes_back() -> None:
    class OneByte(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(b"070701rest of the stream")

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
            return self._data.readinto(memoryview(buffer)[:1])

    head, stream = compression.sniff(io.BufferedReader(OneByte()), 6)  # type: ignore[arg-type]
    assert head == b"070701"
    assert stream.read() == b"070701rest of the stream"


def test_digest_reader_counts_and_hashes() -> None:
    import hashlib

    sha = hashlib.sha256()
    reader = io.BufferedReader(DigestReader(io.BytesIO(b"x" * 3_000_000), sha))
    assert drain(reader) == 3_000_000  # type: ignore[arg-type]
    assert sha.hexdigest() == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_errors_are_import_failures() -> None:
    assert issubclass(TruncatedError, PackageError)
    assert issubclass(DecompressionError, PackageError)


@pytest.mark.parametrize("module", ["isal", "zlib"])
def test_gzip_through_isal_and_through_zlib(packed: dict[str, bytes], plain: bytes,
                                            module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ISA-L's inflate when it is installed (the [import] extra), zlib otherwise: the same
    bytes and the same errors either way."""
    if module == "isal":
        isal_zlib = pytest.importorskip("isal.isal_zlib")
        assert compression.INFLATE is isal_zlib
    else:
        monkeypatch.setattr(compression, "INFLATE", zlib)
    data = packed["gzip"]
    assert read_all(data + data + bytes(512), "gzip", False) == plain + plain
    with pytest.raises(TruncatedError):
        read_all(data[:-1], "gzip", False)
    with pytest.raises(TruncatedError):
        read_all(data[: len(data) // 2], "gzip", False)
    damaged = bytearray(data)
    damaged[-8] ^= 1  # the CRC-32 in the trailer
    with pytest.raises(DecompressionError, match="corrupt gzip data"):
        read_all(bytes(damaged), "gzip", False)
    middle = bytearray(data)
    middle[len(data) // 2 : len(data) // 2 + 8] = bytes(8)
    with pytest.raises(DecompressionError, match="corrupt gzip data"):
        read_all(bytes(middle), "gzip", False)
