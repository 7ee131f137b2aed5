"""Streaming decompression of package payloads, and the small stream helpers the readers share.

    open_decompressed(stream, kind) -> BinaryIO     kind: gzip bzip2 xz lzma zstd none
    sniff_compression(first_bytes) -> kind | ""

Decompression is the importer's long pole (docs/BENCHMARKS.md), so input is read in
1 MiB chunks, and a big multi-block xz stream goes through the external ``xz -T0``, which
decodes independent blocks on several cores (see ``use_external`` for the measurements behind
that choice). Everything else is decompressed in-process (stdlib lzma/bz2, ISA-L's inflate
or zlib, zstandard), which is also the fallback when the tool is missing; both paths give the
same bytes and the same errors. Output is always produced in bounded pieces: a payload is
never held in memory whole.

A stream that ends before its end-of-stream marker raises TruncatedError; corrupt data raises
DecompressionError. Both are checked when the reader reaches EOF, so a consumer that stops at
its own end marker (cpio trailer, tar end blocks) must still drain the stream to EOF.
"""

from __future__ import annotations

import bz2
import contextlib
import fcntl
import hashlib
import io
import lzma
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import BinaryIO, Protocol, cast

import zstandard

from darkcore.errors import DecompressionError, IntegrityError, PackageError, TruncatedError
from darkcore.limits import Budget
from darkcore.settings import EXTERNAL_DECOMPRESS

CHUNK = 1 << 20
KINDS = ("gzip", "bzip2", "xz", "lzma", "zstd", "none")

# External decompressors (see use_external). xz: all cores, but capped in memory so that a
# worker stays well under the importer's 300 MB budget (2 threads here use ~130 MB).
EXTERNAL_TOOLS: dict[str, list[str]] = {
    "xz": ["xz", "-dc", "-T0", "--memlimit-mt=192MiB"],
    "zstd": ["zstd", "-dcq"],
}
EXTERNAL_MIN_BLOCK = 16 << 20  # a smaller first block: one small block, not worth a process


def sniff_compression(first_bytes: bytes) -> str:
    """The compression named by a stream's magic bytes; "" when none is recognised."""
    if first_bytes.startswith(b"\x1f\x8b"):
        return "gzip"
    if first_bytes.startswith(b"BZh"):
        return "bzip2"
    if first_bytes.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if first_bytes.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    # .lzma ("alone") has no magic; every encoder in practice writes properties byte 0x5d
    # (lc=3, lp=0, pb=2) followed by a little-endian dictionary size well below 4 GiB.
    if first_bytes[:1] == b"\x5d" and first_bytes[4:5] in (b"\x00", b"\x01", b"\x02", b"\x04"):
        return "lzma"
    if first_bytes.startswith(b"07070"):  # an uncompressed cpio payload
        return "none"
    return ""


def open_decompressed(stream: BinaryIO, kind: str, *, external: bool | None = None) -> BinaryIO:
    """A buffered reader of ``stream`` decompressed as ``kind``.

    ``external``: None (the default) lets ``use_external`` decide, True requires the external
    tool, False never uses it. Closing the reader stops any helper process; it does not close
    ``stream``.
    """
    if kind == "none":
        return stream
    if kind not in KINDS:
        raise DecompressionError(f"unsupported payload compression {kind!r}")
    if external is None and kind in EXTERNAL_TOOLS:
        head, stream = sniff(stream, 32)
        external = use_external(kind, head)
    argv = _external_argv(kind) if external else None
    raw: io.RawIOBase
    if argv is not None:
        raw = _ExternalReader(stream, argv, kind)
    elif kind == "zstd":
        raw = _ZstdReader(stream)
    else:
        raw = _DecompressorReader(stream, kind)
    return io.BufferedReader(raw, CHUNK)


def use_external(kind: str, head: bytes) -> bool:
    """Whether the external tool beats the in-process decompressor for this stream.

    Measured (docs/BENCHMARKS.md): only for xz streams made of independent blocks, which
    ``xz -T0`` decodes on several cores. A single-block xz stream or any zstd stream is as fast
    or faster in-process (no pipe copies) and costs less CPU. Multi-block xz is recognised
    by its first block header: threaded encoders (xz -T, dpkg-deb) record the block's size
    there. Small blocks are not worth a process. DARKSERVER_EXTERNAL_DECOMPRESS=0 (never) or
    =1 (whenever the tool is installed) overrides this.
    """
    setting = EXTERNAL_DECOMPRESS.get()
    if setting in ("0", "1"):
        return setting == "1" and kind in EXTERNAL_TOOLS and shutil.which(
            EXTERNAL_TOOLS[kind][0]) is not None
    if kind != "xz" or shutil.which("xz") is None:
        return False
    block = xz_first_block_size(head)
    return block is not None and block >= EXTERNAL_MIN_BLOCK


def xz_first_block_size(head: bytes) -> int | None:
    """The uncompressed size an xz stream's first block header records, if it does."""
    if len(head) < 14 or not head.startswith(b"\xfd7zXZ\x00") or head[12] == 0:
        return None  # not xz, or an empty stream (index first)
    flags = head[13]
    if not flags & 0x80:
        return None  # single-threaded encoders do not know the size up front
    at = 14
    values = []
    for _field in range(2 if flags & 0x40 else 1):  # compressed size first, when present
        value = shift = 0
        while True:
            if at >= len(head) or shift > 63:
                return None
            byte = head[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        values.append(value)
    return values[-1]


def _external_argv(kind: str) -> list[str]:
    argv = list(EXTERNAL_TOOLS.get(kind, [""]))
    tool = shutil.which(argv[0]) if argv[0] else None
    if tool is None:
        raise DecompressionError(f"no external decompressor for {kind} is installed")
    argv[0] = tool
    return argv


# --- in-process decompressors ------------------------------------------------------------


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


# gzip: ISA-L's inflate (the isal package, in the [import] extra) decodes 2.1x as fast as zlib
# here and 3.8x as fast as gzip -dc (docs/BENCHMARKS.md), with zlib's API and the same checks
# (CRC-32 and size trailer). zlib when it is not installed.
try:
    from isal import isal_zlib

    INFLATE: ModuleType = isal_zlib
except ImportError:  # pragma: no cover - the [import] extra installs it
    INFLATE = zlib


class _ZlibAdapter:
    """zlib's object in the shape of lzma/bz2's: keeps its unconsumed input itself."""

    def __init__(self) -> None:
        # 31: gzip header and trailer (CRC, size); isal_zlib has zlib's object and types
        self._z: zlib._Decompress = INFLATE.decompressobj(wbits=31)

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._z.unconsumed_tail

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._z.unconsumed_tail:
            data = self._z.unconsumed_tail + data
        return self._z.decompress(data, max(max_length, 0))


_FACTORIES: dict[str, Callable[[], _Decompressor]] = {
    "gzip": _ZlibAdapter,
    "bzip2": bz2.BZ2Decompressor,
    "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
    "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
}
_ERRORS = (zlib.error, INFLATE.error, lzma.LZMAError, OSError, EOFError, ValueError)


class _DecompressorReader(io.RawIOBase):
    """gzip, bzip2, xz and lzma through the stdlib, output bounded by the caller's buffer.

    Concatenated streams (gzip members, xz/bzip2 streams) are followed as the tools do;
    trailing zero bytes (xz stream padding, tape blocking) are ignored.
    """

    def __init__(self, source: BinaryIO, kind: str) -> None:
        self._source = source
        self._kind = kind
        self._new = _FACTORIES[kind]
        self._dec = self._new()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = len(buffer)
        while want and not self._done:
            try:
                data = self._step(want)
            except PackageError:
                raise
            except _ERRORS as exc:
                raise DecompressionError(f"corrupt {self._kind} data: {exc}") from exc
            if data:
                buffer[: len(data)] = data
                return len(data)
        return 0

    def _step(self, want: int) -> bytes:
        dec = self._dec
        if dec.eof:
            rest = self._next_stream(dec.unused_data)
            if not rest:
                self._done = True
                return b""
            self._dec = dec = self._new()
            return dec.decompress(rest, want)
        hungry = dec.needs_input
        chunk = self._source.read(CHUNK) if hungry else b""
        data = dec.decompress(chunk, want)
        # At the end of the input the decoder may still hold output; only when it has none
        # and has not seen its end marker is the stream cut short.
        if hungry and not chunk and not data and not dec.eof:
            raise TruncatedError(f"{self._kind} stream truncated (ended before its end marker)")
        return data

    def _next_stream(self, rest: bytes) -> bytes:
        """After a stream's end: b"" at EOF (zero padding skipped), else the next stream's
        start. Anything that does not begin like another stream is corrupt, not padding."""
        rest = rest.lstrip(b"\0")
        magic = _MAGICS[self._kind]
        while len(rest) < len(magic):
            more = self._source.read(CHUNK)
            if not more:
                break
            rest = (rest + more).lstrip(b"\0")
        if rest and (not magic or not magic.startswith(rest[: len(magic)])):
            raise DecompressionError(f"corrupt {self._kind} data: trailing data after the stream")
        return rest


_MAGICS = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "lzma": b""}


class _ZstdReader(io.RawIOBase):
    """zstd through the zstandard package's streaming reader (bounded output).

    zstandard's reader ends quietly when its input ends inside a frame, so the raw input is
    also walked frame by frame (block headers only) to tell a complete stream from a cut one.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._walker = _ZstdFrameWalker()
        tee = _TeeSource(source, self._walker.feed)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, tee), read_size=CHUNK, read_across_frames=True, closefd=False
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            n: int = self._reader.readinto(buffer)
        except zstandard.ZstdError as exc:
            raise DecompressionError(f"corrupt zstd data: {exc}") from exc
        if n == 0 and len(buffer):
            self._walker.finish()
        return n


class _TeeSource:
    def __init__(self, source: BinaryIO, sink: Callable[[bytes], None]) -> None:
        self._source = source
        self._sink = sink

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._sink(data)
        return data


class _ZstdFrameWalker:
    """Follows zstd frame and block headers (RFC 8878) to know whether input ended cleanly."""

    def __init__(self) -> None:
        self._buf = b""
        self._skip = 0  # bytes of block/frame content still to pass over
        self._state = "magic"  # magic | skippable | fhd (frame header) | block
        self._need = 4
        self._checksum = False
        self._frames = 0

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            take = min(self._need - len(self._buf), len(view))
            self._buf += bytes(view[:take])
            view = view[take:]
            if len(self._buf) == self._need:
                self._advance()

    def _advance(self) -> None:
        buf, self._buf = self._buf, b""
        if self._state == "magic":
            magic = struct.unpack("<I", buf)[0]
            if magic == 0xFD2FB528:
                self._state, self._need = "fhd", 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame: u32 size, content
                self._state, self._need = "skippable", 4
            else:
                raise DecompressionError("corrupt zstd data: bad frame magic")
        elif self._state == "skippable":
            self._skip = struct.unpack("<I", buf)[0]
            self._state, self._need = "magic", 4
            self._frames += 1
        elif self._state == "fhd":
            fhd = buf[0]
            fcs_flag, single, checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
            fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
            self._checksum = bool(checksum)
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[did_flag] + fcs_size
            self._state, self._need = "block", 3
        elif self._state == "block":
            header = int.from_bytes(buf, "little")
            last, btype, size = header & 1, (header >> 1) & 3, header >> 3
            self._skip = 1 if btype == 1 else size  # RLE blocks store one byte
            if last:
                self._frames += 1
                if self._checksum:
                    self._skip += 4
                self._state, self._need = "magic", 4

    def finish(self) -> None:
        if self._skip or self._buf or self._state != "magic" or not self._frames:
            raise TruncatedError("zstd stream truncated (ended inside a frame)")


# --- external tools ----------------------------------------------------------------------

_F_SETPIPE_SZ = 1031  # Linux: bigger pipes mean fewer, larger reads and writes


class _ExternalReader(io.RawIOBase):
    """Decompress through ``xz -dc`` / ``zstd -dc``: a thread feeds stdin, we read stdout."""

    def __init__(self, source: BinaryIO, argv: list[str], kind: str) -> None:
        self._kind = kind
        self._source = source
        self._feed_error: BaseException | None = None
        self._finished = False
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        for pipe in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, CHUNK)  # type: ignore[union-attr]
        self._thread = threading.Thread(target=self._feed, name=f"{kind}-feed", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            while chunk := self._source.read(CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[stdin.write(view) :]
        except (BrokenPipeError, ValueError):
            pass  # the tool stopped reading (bad data, or close()); its exit status says why
        except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
            self._feed_error = exc
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._finished:
            return 0
        stdout = cast(io.FileIO, self._proc.stdout)  # bufsize=0: a raw pipe
        n = stdout.readinto(buffer) or 0
        if n == 0 and len(buffer):
            self._finish()
        return n

    def _finish(self) -> None:
        self._finished = True
        status = self._proc.wait()
        self._thread.join()
        if self._feed_error is not None:
            if isinstance(self._feed_error, PackageError | OSError):
                raise self._feed_error
            raise DecompressionError(f"reading the {self._kind} input: {self._feed_error}")
        if status != 0:
            assert self._proc.stderr is not None
            message = self._proc.stderr.read().decode(errors="replace").strip()
            message = message.splitlines()[-1] if message else f"exit status {status}"
            lowered = message.lower()
            if "unexpected end" in lowered or "truncated" in lowered or "premature" in lowered:
                raise TruncatedError(f"{self._kind} stream truncated: {message}")
            raise DecompressionError(f"corrupt {self._kind} data: {message}")

    def close(self) -> None:
        if not self.closed:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._thread.join()
            for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        super().close()


# --- helpers shared by the container readers ---------------------------------------------


class BoundedReader:
    """Exactly ``size`` bytes of an underlying stream; short input raises TruncatedError.

    ``what`` names the data in error messages ("cpio member 'usr/bin/x'").
    """

    def __init__(self, stream: BinaryIO, size: int, what: str) -> None:
        self._stream = stream
        self.size = size
        self.remaining = size
        self.what = what

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.remaining:
            n = self.remaining
        if n == 0:
            return b""
        data = self._stream.read(n)
        if len(data) != n:
            self._short()
        self.remaining -= n
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:
        n = min(len(buffer), self.remaining)
        if n == 0:
            return 0
        got = readinto(self._stream, memoryview(buffer)[:n])
        if got != n:
            # BufferedReader.readinto may return less than asked only at EOF
            while got < n:
                more = readinto(self._stream, memoryview(buffer)[got:n])
                if not more:
                    self._short()
                got += more
        self.remaining -= n
        return n

    def skip(self) -> None:
        """Pass over what is left, in chunks, keeping none of it."""
        scratch = bytearray(min(self.remaining, CHUNK))
        while self.remaining:
            self.readinto(memoryview(scratch)[: min(self.remaining, CHUNK)])

    def _short(self) -> None:
        raise TruncatedError(f"{self.what} truncated: the data ends before its {self.size} bytes")


ELF_MAGIC = b"\x7fELF"


class ElfDigestCheck(BoundedReader):
    """An archive member's data, checked against the digest its package lists for it when the
    member is an ELF file (those are read whole anyway; hashing everything else would cost a
    pass over the whole payload for nothing the importer keeps).

    Wraps the container's own reader of the member, so the container's bookkeeping stays
    right. ``finish()`` (also run by ``skip()``) reads what the consumer left, hashes it and
    raises IntegrityError on a mismatch; ``expected`` None means the package lists no digest
    for this member, which ``finish()`` reports as False (True: checked, None: not ELF).
    """

    def __init__(self, inner: BoundedReader, algo: str, expected: str | None, what: str) -> None:
        super().__init__(cast(BinaryIO, inner), inner.remaining, inner.what)
        self._inner = inner
        self._hash = hashlib.new(algo)
        self._expected = expected
        self._failure = what  # "rpm payload corrupt: /usr/bin/x does not match FILEDIGESTS"
        self._head = b""
        self._done = False
        self.result: bool | None = None

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        self._seen(data)
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:
        n = super().readinto(buffer)
        self._seen(memoryview(buffer)[:n])
        return n

    def _seen(self, data: bytes | memoryview) -> None:
        if len(self._head) < len(ELF_MAGIC):
            self._head += bytes(data[: len(ELF_MAGIC) - len(self._head)])
        self._hash.update(data)

    def skip(self) -> None:
        self.finish()

    def finish(self) -> bool | None:
        if self._done:
            return self.result
        self._done = True
        if not self._head or not ELF_MAGIC.startswith(self._head):
            self._inner.skip()  # not ELF, or never looked at: passed over unhashed
            self.remaining = 0
            return None
        scratch = bytearray(min(self.remaining, CHUNK))
        while self.remaining:
            self.readinto(memoryview(scratch)[: min(self.remaining, CHUNK)])
        if self._head != ELF_MAGIC:
            return None
        if self._expected is not None:
            got = self._hash.hexdigest()
            if got != self._expected:
                raise IntegrityError(f"{self._failure} ({got} != {self._expected})")
        self.result = self._expected is not None
        return self.result


def readinto(stream: BinaryIO, buffer: memoryview | bytearray) -> int:
    """``stream.readinto``: every stream we are handed has it, typing.BinaryIO just omits it."""
    n: int | None = cast(io.BufferedIOBase, stream).readinto(buffer)
    return n or 0


def read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    """``n`` bytes or TruncatedError naming ``what``."""
    data = stream.read(n)
    if len(data) != n:
        raise TruncatedError(f"{what} truncated: wanted {n} bytes, got {len(data)}")
    return data


def drain(stream: BinaryIO) -> int:
    """Read to EOF (so end-of-stream checks run); returns the byte count."""
    total = 0
    scratch = bytearray(CHUNK)
    while n := readinto(stream, scratch):
        total += n
    return total


def sniff(stream: BinaryIO, n: int = 16) -> tuple[bytes, BinaryIO]:
    """The first ``n`` bytes of ``stream`` (fewer only at EOF) and a stream that still starts
    with them. (BufferedReader.peek may return a single byte; a pipe may deliver fewer.)"""
    head = stream.read(n)
    return head, io.BufferedReader(_Prefixed(head, stream), CHUNK)


class _Prefixed(io.RawIOBase):
    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return readinto(self._stream, buffer)


class DigestReader(io.RawIOBase):
    """Passes a stream through, feeding every byte to hash objects and counting them; with a
    ``budget``, every byte is charged as decompressed data (LimitExceeded past the limit)."""

    def __init__(self, stream: BinaryIO, *hashes: _Hash, budget: Budget | None = None) -> None:
        self._stream = stream
        self.hashes = list(hashes)
        self.count = 0
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n: int = readinto(self._stream, buffer)
        if n:
            view = memoryview(buffer)[:n]
            for h in self.hashes:
                h.update(view)
            self.count += n
            if self._budget is not None:
                self._budget.unpack(n)
        return n


class _Hash(Protocol):
    def update(self, data: memoryview, /) -> None: ...


__all__ = [
    "CHUNK",
    "KINDS",
    "BoundedReader",
    "DigestReader",
    "ElfDigestCheck",
    "drain",
    "open_decompressed",
    "read_exact",
    "sniff",
    "readinto",
    "sniff_compression",
]
