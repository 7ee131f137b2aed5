"""darkimport.samples builds real packages: checked with rpm, dpkg-deb, bsdtar, ar and readelf."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import zstandard

from darkcore.elf import read_elf_path
from darkimport import samples


def tool(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check)


def rpm_query(package: Path, fmt: str) -> str:
    return tool("rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, package).stdout


def by_kind(packages: list[Path], suffix: str) -> list[Path]:
    return sorted(p for p in packages if p.name.endswith(suffix))


def test_sample_set_holds_every_payload_compression(sample_set) -> None:
    rpms = by_kind(sample_set.packages, ".rpm")
    debs = by_kind(sample_set.packages, ".deb")
    assert {rpm_query(p, "%{PAYLOADCOMPRESSOR}") for p in rpms} == {
        "gzip", "bzip2", "xz", "lzma", "zstd", "(none)"}
    members = {m for p in debs for m in tool("ar", "t", p).stdout.split()}
    assert {m for m in members if m.startswith("data.tar")} == {
        "data.tar.gz", "data.tar.xz", "data.tar.zst", "data.tar.bz2", "data.tar"}
    assert {rpm_query(p, "%{RELEASE}").split(".")[-1] for p in rpms} == {
        "fc39", "fc40", "fc41", "el7", "el9"}
    for deb in debs:  # dpkg itself reads every one, the ar-assembled bzip2 one included
        assert "./usr/" in tool("dpkg-deb", "-c", deb).stdout
    # Only the packages are left in the directory (the importer is pointed at it).
    assert sorted(sample_set.directory.iterdir()) == sorted(sample_set.packages)


def test_sample_set_rows_cover_every_kind(sample_set) -> None:
    rows = sample_set.expected
    paths = {r.path for r in rows}
    assert "/usr/lib/modules/6.1.0-demo/extra/demo.ko" in paths
    assert "/usr/lib64/libdemo.so.1.0.0" in paths
    assert "/usr/lib/debug/usr/bin/hello-dbg.debug" in paths
    assert any(p.startswith("/usr/lib/debug/.build-id/") for p in paths)
    assert {len(r.build_id) for r in rows} >= {16, 32, 40, 64}
    # The hard link: both names, one id, in the rpm and in the deb.
    for nvra in ("hello-1.0-1.fc40.x86_64", "hello_1.0-1_amd64"):
        ids = {r.path: r.build_id for r in rows if r.nvra == nvra}
        assert ids["/usr/bin/hello"] == ids["/usr/bin/hello-sha1"]
    # Files without an id are packaged but yield no row.
    assert "/usr/bin/hello-none" not in paths and "/usr/lib64/demo/module.o" not in paths


def test_packaged_files_read_as_readelf_says(sample_set) -> None:
    """Unpack with the real tools and read every ELF member with our reader: same ids as the
    oracle rows (which come from readelf), and the id-less ELF files read as None."""
    found: set[tuple[str, str]] = set()
    without = 0
    for package in sample_set.packages:
        with tempfile.TemporaryDirectory() as tmp:
            if package.suffix == ".rpm":
                tool("bsdtar", "-xf", package, "-C", tmp)
            else:
                tool("dpkg-deb", "-x", package, tmp)
            for path in Path(tmp).rglob("*"):
                if path.is_file() and not path.is_symlink():
                    info = read_elf_path(path)
                    if info is None:
                        continue
                    if info.build_id is None:
                        without += 1
                    else:
                        found.add((info.build_id.hex(), "/" + str(path.relative_to(tmp))))
    assert found == {(r.build_id, r.path) for r in sample_set.expected}
    assert without >= 3  # hello-none (rpm, deb) and module.o


def test_dbgsym_deb_lists_its_build_ids(sample_set) -> None:
    deb = next(p for p in sample_set.packages if p.name.startswith("hello-dbgsym_"))
    listed = tool("dpkg-deb", "-f", deb, "Build-Ids").stdout.split()
    files = re.findall(r"\./usr/lib/debug/\.build-id/([0-9a-f]{2})/([0-9a-f]+)\.debug",
                       tool("dpkg-deb", "-c", deb).stdout)
    assert sorted(listed) == sorted(a + b for a, b in files) and len(listed) == 2


def test_compiled_samples(sample_elves: list[samples.SampleElf]) -> None:
    ids = {e.label: e.build_id for e in sample_elves}
    # A debug file carries the id of the binary it was split from; all others differ.
    assert ids["debug-objcopy"] == ids["shared-sha1"]
    assert ids["debug-eu-strip"] == ids["exec-stripped"]
    assert ids["exec-sha1-hardlink"] == ids["exec-sha1"]
    own = [e.build_id for e in sample_elves if e.build_id and e.kind != "debug"
           and e.label != "exec-sha1-hardlink"]
    assert len(own) == len(set(own)) >= 9
    labels = {e.label for e in sample_elves}
    assert {"exec-sha1", "exec-md5", "exec-uuid", "exec-hex8", "exec-hex32", "exec-none",
            "shared-sha1", "relocatable-sha1", "relocatable-none", "debug-objcopy",
            "debug-eu-strip", "exec-stripped", "debug-dwz"} <= labels
    modes = {e.label: e.source.stat().st_mode & 0o777 for e in sample_elves}
    assert modes["debug-objcopy"] == modes["relocatable-sha1"] == 0o644
    assert modes["exec-sha1"] == modes["shared-sha1"] == 0o755
    # The stripped binaries point at their debug twins, as find-debuginfo leaves them.
    for stripped in ("exec-stripped", "shared-sha1"):
        path = next(e.source for e in sample_elves if e.label == stripped)
        assert ".gnu_debuglink" in tool("readelf", "-S", "-W", path).stdout
        assert ".debug_info" not in tool("readelf", "-S", "-W", path).stdout


def test_source_rpm(tmp_path: Path) -> None:
    srpm = samples.build_source_rpm(tmp_path)
    assert srpm.name == "hello-1.0-1.fc40.src.rpm"
    # A source package has no SOURCERPM tag of its own, and carries the tarball, not binaries.
    assert rpm_query(srpm, "%{SOURCERPM}") == "(none)"
    assert rpm_query(srpm, "[%{FILENAMES}\n]").split() == ["hello-1.0.tar.gz", "hello.spec"]


def test_fedora_pair_has_build_id_links(sample_elves: list[samples.SampleElf],
                                        tmp_path: Path) -> None:
    main, debuginfo = samples.build_fedora_pair(tmp_path, sample_elves)
    sha1 = next(e for e in sample_elves if e.label == "exec-sha1").build_id or ""
    dbg = next(e for e in sample_elves if e.label == "debug-eu-strip").build_id or ""
    links = dict(line.split(" ", 1) for line in
                 rpm_query(main, "[%{FILENAMES} %{FILELINKTOS}\n]").splitlines())
    # The hard-linked pair gets one link and one ".1" link (rpm numbers repeated ids).
    assert {links[f"/usr/lib/.build-id/{sha1[:2]}/{sha1[2:]}"],
            links[f"/usr/lib/.build-id/{sha1[:2]}/{sha1[2:]}.1"]} == {
        "../../../../usr/bin/hello", "../../../../usr/bin/hello-sha1"}
    debug_links = dict(line.split(" ", 1) for line in
                       rpm_query(debuginfo, "[%{FILENAMES} %{FILELINKTOS}\n]").splitlines())
    assert debug_links[f"/usr/lib/debug/.build-id/{dbg[:2]}/{dbg[2:]}.debug"] == (
        "../../../../../usr/lib/debug/usr/bin/hello-dbg-1.0-1.fc40.x86_64.debug")


@pytest.mark.parametrize(("compression", "magic"), [
    ("gzip", b"\x1f\x8b"), ("bzip2", b"BZh"), ("xz", b"\xfd7zXZ\0"), ("lzma", b"\x5d\0\0"),
    ("zstd", b"\x28\xb5\x2f\xfd"), ("none", b"070701")])
def test_rpm_payload_offset_and_compressions(sample_elves: list[samples.SampleElf],
                                             tmp_path: Path, compression: str,
                                             magic: bytes) -> None:
    rpm = samples.build_rpm(tmp_path, "one", "1", "1.fc40",
                            samples.files_of(sample_elves, "exec-md5"), compression)
    data = rpm.read_bytes()
    assert data[samples.payload_offset(rpm):].startswith(magic)
    assert "digests OK" in tool("rpm", "-K", "--nosignature", rpm).stdout


def test_broken_copies_are_rejected_by_the_real_tools(sample_set, tmp_path: Path) -> None:
    rpm = by_kind(sample_set.packages, ".rpm")[0]
    deb = by_kind(sample_set.packages, ".deb")[0]
    cut = samples.truncate_copy(rpm, tmp_path / "cut.rpm", 0.6)
    assert cut.stat().st_size == int(rpm.stat().st_size * 0.6)
    # (bsdtar -x exits 0 on this truncated rpm, silently: rpm's own digest check is the oracle)
    assert "digests OK" not in tool("rpm", "-K", "--nosignature", cut, check=False).stdout
    flipped = samples.corrupt_copy(rpm, tmp_path / "flipped.rpm")
    assert rpm_query(flipped, "%{NAME}") == "hello"  # the header still reads...
    assert "digests OK" not in tool("rpm", "-K", "--nosignature", flipped, check=False).stdout
    # ...the payload does not (the lead's import test corrupts a deb's tail this way).
    tail = samples.corrupt_copy(deb, tmp_path / "tail.deb", deb.stat().st_size - 200)
    assert tool("dpkg-deb", "-c", tail, check=False).returncode != 0
    middle = samples.corrupt_copy(deb, tmp_path / "middle.deb")
    assert tool("dpkg-deb", "-c", middle, check=False).returncode != 0
    assert tool("dpkg-deb", "-f", middle, "Package").stdout.strip() == deb.name.split("_")[0]


def test_large_rpm_has_a_stripped_cpio_payload(large_rpm: Path) -> None:
    files = [line.split() for line in
             rpm_query(large_rpm, "[%{FILENAMES} %{LONGFILESIZES}\n]").splitlines()]
    assert [name for name, _ in files] == [
        "/usr/bin/hello-sha1", "/usr/lib64/libdemo.so.1.0.0", "/usr/share/bigdata/huge.img"]
    assert files[-1][1] == str(4 * samples.GIB)
    data = large_rpm.read_bytes()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(
            data[samples.payload_offset(large_rpm):])) as payload:
        # 07070X + an 8-hex-digit index into the header's file list instead of a name.
        assert re.fullmatch(rb"07070X[0-9a-f]{8}", payload.read(14))
    assert "digests OK" in tool("rpm", "-K", "--nosignature", large_rpm).stdout
