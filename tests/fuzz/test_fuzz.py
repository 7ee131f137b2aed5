"""The short fuzzing run of every reader (derandomized: the same inputs every run, a few
seconds each). What must hold: garbage raises a darkcore.errors.PackageError subclass and
nothing else; a seed itself reads cleanly. The long run and its figures: docs/FUZZING.md."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from darkcore.errors import PackageError
from tests.fuzz import harness
from tests.fuzz.harness import fuzz_settings, inputs

# A failing core mutant is 160 KB: hypothesis warns that its repr is large; the report must
# still show the error rather than fail on the warning (the suite turns warnings into errors).
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

HARNESSES: dict[str, tuple[Callable[[bytes], None], tuple[str, ...]]] = {
    "rpm": (harness.fuzz_rpm, ("tiny.rpm", "tiny-nodigest.rpm")),
    "deb": (harness.fuzz_deb, ("tiny.deb", "tiny-none.deb")),
    "cpio": (harness.fuzz_cpio, ("tiny.cpio",)),
    "tar": (harness.fuzz_tar, ("tiny.tar",)),
    "elf": (harness.fuzz_elf, ("tiny.elf", "tiny.ko")),
    "core": (harness.fuzz_core, ("tiny.core.xz",)),
    "scan": (harness.fuzz_scan, ("tiny.rpm", "tiny-nodigest.rpm", "tiny.deb", "tiny-none.deb")),
}


def only_package_errors(target: Callable[[bytes], None], data: bytes) -> None:
    try:
        target(data)
    except PackageError as exc:
        assert str(exc), f"{type(exc).__name__} without a message"


@pytest.mark.parametrize("name", list(HARNESSES))
def test_seeds_read_cleanly(name: str) -> None:
    target, seeds = HARNESSES[name]
    for seed_name in seeds:
        target(harness.seed(seed_name))  # no exception at all


@pytest.mark.parametrize("name", list(HARNESSES))
def test_fuzz_reader(name: str) -> None:
    target, seeds = HARNESSES[name]

    @fuzz_settings(300)
    @given(inputs(*seeds))
    def run(data: bytes) -> None:
        only_package_errors(target, data)

    run()


@pytest.mark.parametrize("kind", list(harness.COMPRESSORS))
def test_fuzz_decompressors(kind: str) -> None:
    seed = harness.compressed_seed(kind)
    harness.fuzz_decompress(kind, seed)

    @fuzz_settings(150)
    @given(st.one_of(harness.mutants(seed), st.binary(max_size=1024)))
    def run(data: bytes) -> None:
        only_package_errors(lambda d: harness.fuzz_decompress(kind, d), data)

    run()


# --- what fuzzing found (each fixed; kept as plain regression tests) ---------------------------


def test_core_with_a_program_header_offset_past_2_63() -> None:
    """read_core seeked to an untrusted u64 e_phoff: OverflowError instead of a FormatError."""
    core = bytearray(harness.seed("tiny.core.xz"))
    core[32:40] = (0xFFFFFFFFFFFFFFF0).to_bytes(8, "little")  # e_phoff of an ELF64 header
    with pytest.raises(PackageError, match="program headers ends past the end of the file"):
        harness.fuzz_core(bytes(core))
