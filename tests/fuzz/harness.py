"""Fuzzing harnesses: one per reader, each a function of raw bytes that may only raise
darkcore.errors.PackageError subclasses (no IndexError, struct.error, UnicodeDecodeError,
RecursionError, MemoryError, ...), plus the hypothesis strategy that feeds them: the seeds in
tests/fuzz/seeds/ (real files, see make_seeds.py) mutated by bit flips, byte overwrites with
boundary values, insertions, deletions and truncation, and plain random bytes.

The short run is part of the normal suite (test_fuzz.py: derandomized, a fixed number of
examples). The long run: ``DARKSERVER_FUZZ_EXAMPLES=20000 pytest tests/fuzz`` (random, no
example database); docs/FUZZING.md has its figures.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

import zstandard
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from darkcore.compression import drain, open_decompressed
from darkcore.core import read_core
from darkcore.cpio import iter_cpio
from darkcore.deb import DebReader
from darkcore.elf import iter_notes, read_elf, read_elf_bytes
from darkcore.errors import PackageError
from darkcore.limits import Budget, Limits
from darkcore.rpm import RpmReader
from darkcore.settings import FUZZ_EXAMPLES
from darkcore.tar import iter_tar
from darkimport.run.scan import ScanOptions, scan_stream

SEEDS = Path(__file__).parent / "seeds"
EXAMPLES = FUZZ_EXAMPLES.get()
# Small bounds: a mutant that claims gigabytes fails fast instead of running for minutes.
LIMITS = Limits(unpacked_bytes=64 << 20, members=20_000, spool_member=64 << 20,
                spool_package=128 << 20, warnings=20)


def fuzz_settings(short_examples: int) -> settings:
    """Short: derandomized, ``short_examples`` inputs. Long: DARKSERVER_FUZZ_EXAMPLES random
    inputs per harness."""
    return settings(
        max_examples=EXAMPLES or short_examples,
        derandomize=not EXAMPLES,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


@cache
def seed(name: str) -> bytes:
    data = (SEEDS / name).read_bytes()
    return lzma.decompress(data) if name.endswith(".xz") else data


_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff",
                b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x00\x00\x01", b"\x01\x00\x00\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\x00\x00\x00\x00\x00\x00\x00\x10"]

Mutation = tuple[str, int, int, bytes]
_KINDS = st.sampled_from(["flip", "byte", "interesting", "insert", "delete", "truncate", "splice"])
_BLOBS = st.one_of(st.sampled_from(_INTERESTING), st.binary(min_size=1, max_size=64))


def mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    out = bytearray(data)
    for kind, where, value, blob in mutations:
        if not out:
            out += blob
            continue
        at = where % len(out)
        if kind == "flip":
            out[at] ^= 1 << (value % 8)
        elif kind == "byte":
            out[at] = value
        elif kind == "interesting":
            out[at : at + len(blob)] = blob
        elif kind == "insert":
            out[at:at] = blob
        elif kind == "delete":
            del out[at : at + 1 + value]
        elif kind == "truncate":
            del out[at:]
        elif kind == "splice":  # a copy of another part of the file (a repeated header, ...)
            start = value * len(out) // 256
            out[at:at] = out[start : start + len(blob) * 4]
    return bytes(out)


def mutants(data: bytes) -> st.SearchStrategy[bytes]:
    """1 to 6 mutations anywhere in ``data`` (positions spread over the whole file)."""
    mutation = st.tuples(_KINDS, st.integers(0, max(len(data) - 1, 0)), st.integers(0, 255),
                         _BLOBS)
    return st.lists(mutation, min_size=1, max_size=6).map(lambda ms: mutate(data, ms))


def inputs(*seed_names: str) -> st.SearchStrategy[bytes]:
    """Mutants of the seeds (mostly), the unchanged seeds, and random bytes."""
    seeds = st.sampled_from(seed_names).map(seed)
    mutated = seeds.flatmap(mutants)
    return st.one_of(mutated, mutated, mutated, seeds, st.binary(max_size=4096))


# --- harnesses: bytes in, only PackageError out ------------------------------------------------


def fuzz_rpm(data: bytes) -> None:
    rpm = RpmReader(io.BytesIO(data), Budget(LIMITS))
    rpm.files()
    for member in rpm.members():
        member.data.read(1 << 16)


def fuzz_deb(data: bytes) -> None:
    deb = DebReader(io.BytesIO(data), Budget(LIMITS))
    for member in deb.members():
        if member.data is not None:
            member.data.read(1 << 16)


def fuzz_cpio(data: bytes) -> None:
    for member in iter_cpio(io.BytesIO(data), None, Budget(LIMITS)):
        member.data.read(1 << 16)


def fuzz_tar(data: bytes) -> None:
    for entry in iter_tar(io.BytesIO(data), "tar", Budget(LIMITS)):
        if entry.data is not None:
            entry.data.read(1 << 16)


def fuzz_elf(data: bytes) -> None:
    from_bytes = read_elf_bytes(data)
    from_stream = read_elf(io.BytesIO(data))
    assert from_bytes == from_stream, "the two ELF entry points disagree"
    # The note walker on its own, over any bytes (a whole file is not a note list: its
    # BadNoteError is the expected answer, anything else is a bug).
    for big_endian in (False, True):
        try:
            for _note in iter_notes(data, big_endian):
                pass
        except PackageError:
            pass


def fuzz_core(data: bytes) -> None:
    read_core(io.BytesIO(data))


def fuzz_scan(data: bytes) -> None:
    """The importer's whole path for one package: container, digests, ELF parsing."""
    scan_stream(io.BytesIO(data), "fuzz.rpm" if data[:1] == b"\xed" else "fuzz.deb",
                ScanOptions(limits=LIMITS))


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
    "zstd": lambda b: zstandard.ZstdCompressor(write_checksum=True).compress(b),
}


def fuzz_decompress(kind: str, data: bytes) -> None:
    drain(open_decompressed(io.BytesIO(data), kind, external=False))


def compressed_seed(kind: str) -> bytes:
    return COMPRESSORS[kind](seed("tiny.elf") + struct.pack("<I", 0) * 64)
