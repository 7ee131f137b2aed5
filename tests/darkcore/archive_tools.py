"""Helpers for the archive-reader tests: the real tools' answers, and hand-assembled containers
for the cases the tools cannot produce (BSD ar names, hostile tar paths, stripped cpio).

Fixtures building real packages live in conftest_archives.py (a pytest plugin).
"""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path


def tool(*args: str | Path, stdin: bytes | None = None) -> bytes:
    """Run a real tool and return its stdout (failure fails the test loudly)."""
    return subprocess.run([str(a) for a in args], input=stdin, capture_output=True,
                          check=True).stdout


def rpm_query(package: Path, fmt: str) -> str:
    return tool("rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, package).decode()


# --- rpm digests ---------------------------------------------------------------------------

SIGNATURE_DIGEST_TAGS = (269, 273, 279, 1004)  # SHA1HEADER, SHA256HEADER, SHA3_256HEADER, MD5


def rename_rpm_tags(data: bytes, tags: tuple[int, ...], *, signature: bool = True,
                    offset: int = 20000) -> bytes:
    """``data`` with these tags of the signature (or main) header renamed to unknown numbers,
    as a damaged tag number would be: the package then no longer carries them."""
    out = bytearray(data)
    at = 96
    if not signature:
        count, length = struct.unpack_from(">II", data, at + 8)
        at += 16 + 16 * count + length
        at += -at % 8
    count = struct.unpack_from(">I", data, at + 8)[0]
    for i in range(count):
        entry = at + 16 + 16 * i
        tag = struct.unpack_from(">I", data, entry)[0]
        if tag in tags:
            struct.pack_into(">I", out, entry, tag + offset)
    return bytes(out)


def rpm_header_blob(entries: list[tuple[int, int, bytes]]) -> bytes:
    """A header structure (magic, counts, index, data) of (tag, type, stored bytes) entries,
    each with count 1, in tag order (rpm's format_header.md)."""
    index, store = b"", b""
    for tag, kind, value in sorted(entries):
        index += struct.pack(">IIII", tag, kind, len(store), 1)
        store += value
    return (b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", len(entries), len(store)) +
            index + store)


def with_v6_signature(data: bytes) -> bytes:
    """The rpm with its signature header replaced by an rpm v6-style one: SHA256HEADER and
    SHA3_256HEADER (279) only, no SIGMD5, no SHA1, no sizes (format_v6.md). rpm 4.18 cannot
    write one; it reads it and checks the SHA-256."""
    count, length = struct.unpack_from(">II", data, 96 + 8)
    main = 96 + 16 + 16 * count + length
    main += -main % 8
    count, length = struct.unpack_from(">II", data, main + 8)
    blob = data[main : main + 16 + 16 * count + length]
    signature = rpm_header_blob([
        (273, 6, hashlib.sha256(blob).hexdigest().encode() + b"\0"),
        (279, 6, hashlib.sha3_256(blob).hexdigest().encode() + b"\0"),
    ])
    return data[:96] + signature + bytes(-len(signature) % 8) + data[main:]


def rpm_check(package: Path, *options: str) -> tuple[bool, str]:
    """``rpm -K`` (the oracle for damage): (whether rpm says OK, its output)."""
    proc = subprocess.run(["rpm", "-K", *options, str(package)], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and "NOT OK" not in out, out


# --- cpio newc -----------------------------------------------------------------------------


@dataclass
class Entry:
    name: str
    data: bytes = b""
    mode: int = 0o100644
    ino: int = 1
    nlink: int = 1
    dev: tuple[int, int] = (0, 0)


def newc(entries: list[Entry], trailer: bool = True) -> bytes:
    """A cpio newc archive, byte for byte as the format (and rpm's cpio.c) lays it out."""
    out = bytearray()
    for e in [*entries, *([Entry("TRAILER!!!", ino=0, mode=0)] if trailer else [])]:
        name = e.name.encode() + b"\0"
        fields = [e.ino, e.mode, 0, 0, e.nlink, 0, len(e.data), e.dev[0], e.dev[1], 0, 0,
                  len(name), 0]
        out += b"070701" + b"".join(b"%08x" % f for f in fields) + name
        out += b"\0" * (-len(out) % 4)
        out += e.data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def stripped_entry(fx: int, data: bytes) -> bytes:
    """rpm's stripped entry (cpio.c rpmcpioStrippedHeaderWrite): magic, index, pad, data, pad."""
    out = b"07070X" + b"%08x" % fx + b"\0\0" + data
    return out + b"\0" * (-len(out) % 4)


# --- ar / deb -------------------------------------------------------------------------------


def ar_member(name: bytes, data: bytes, *, bsd: bool = False) -> bytes:
    if bsd:
        data = name + data
        name = b"#1/%d" % len(name)
    header = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + \
        b"100644".ljust(8) + str(len(data)).encode().ljust(10) + b"`\n"
    assert len(header) == 60
    return header + data + (b"\n" if len(data) % 2 else b"")


def ar_archive(members: list[tuple[bytes, bytes]], *, style: str = "plain") -> bytes:
    """An ar archive; style: plain (dpkg), gnu ("name/", "//" long-name table), bsd ("#1/N")."""
    out = b"!<arch>\n"
    if style == "gnu":
        table = b"".join(name + b"/\n" for name, _ in members)
        out += ar_member(b"//", table)
        offset = 0
        for name, data in members:
            out += ar_member(b"/%d" % offset, data)
            offset += len(name) + 2
        return out
    for name, data in members:
        if style == "bsd":
            out += ar_member(name, data, bsd=True)
        else:
            out += ar_member(name + (b"/" if style == "gnu-short" else b""), data)
    return out


def tar_bytes(files: list[tuple[str, bytes]], *, links: list[tuple[str, str]] = ()) -> bytes:
    """A tar made by Python's tarfile (any member names, including hostile ones)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def control_tar_gz(fields: dict[str, str]) -> bytes:
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()
    raw = tar_bytes([("./control", text)])
    return tool("gzip", "-9n", stdin=raw)


def assemble_deb(path: Path, data_tar: bytes, data_name: str = "data.tar",
                 fields: dict[str, str] | None = None, style: str = "plain") -> Path:
    """A deb put together by hand around any data.tar (as dpkg-deb would lay it out)."""
    fields = fields or {"Package": "crafted", "Version": "1.0-1", "Architecture": "amd64"}
    path.write_bytes(ar_archive([
        (b"debian-binary", b"2.0\n"),
        (b"control.tar.gz", control_tar_gz(fields)),
        (data_name.encode(), data_tar),
    ], style=style))
    return path
