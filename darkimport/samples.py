"""Real sample ELF files and packages for the demo, the tests and the benchmarks.

Everything is made by the real tools: gcc/ld/objcopy/eu-strip for the ELF files, ``rpmbuild``
for rpms, ``dpkg-deb`` (and ``ar``/``bzip2`` for the one format it cannot write) for debs. The
expected build-id of every sample comes from binutils' ``readelf -n``, never from our reader.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# (source file, install path); the same source twice (or two sources that are one inode) is
# packaged as a hard link.
Files = Sequence[tuple[Path, str]]

RPM_PAYLOADS = {  # rpm's %_binary_payload: w<level>.<io>
    "gzip": "w9.gzdio", "bzip2": "w9.bzdio", "xz": "w6.xzdio", "lzma": "w6.lzdio",
    "zstd": "w19.zstdio", "none": "w0.ufdio",
}
DEB_COMPRESSIONS = ("gzip", "xz", "zstd", "none", "bzip2")  # bzip2: assembled with ar, see below
HEX_IDS = {"hex8": "8badf00ddeadbeef", "hex32": "c0ffee00" * 8}  # lld "fast"-sized, sha256-sized
GIB = 1 << 30

_BUILD_ID = re.compile(r"Build ID: ([0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class SampleElf:
    label: str  # e.g. "exec-sha1"
    source: Path  # the built file
    install_path: str  # where the packages put it
    build_id: str | None  # hex, from binutils readelf -n; None when the file has none
    kind: str  # exec, shared, relocatable, debug
    elf_class: int  # 32 or 64

    @property
    def debug(self) -> bool:
        return self.kind == "debug"


def run(args: Sequence[str | Path], cwd: Path | None = None) -> str:
    """Run a tool; on failure raise with its output (a sample that cannot be built is a bug)."""
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env=os.environ | {"LC_ALL": "C", "SOURCE_DATE_EPOCH": "1700000000"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def readelf_build_id(path: Path) -> str | None:
    """The build-id binutils' readelf prints for ``path`` (the oracle), or None."""
    match = _BUILD_ID.search(run(["readelf", "-n", "-W", path]))
    return match.group(1) if match else None


# --- ELF files ----------------------------------------------------------------------------------

_HELLO = '#include <stdio.h>\nint main(void) { puts(GREETING); return 0; }\n'
_LIB = 'int demo_answer(void) { return 42; }\nconst char *demo_name(void) { return "demo"; }\n'
_MODULE = 'int demo_init(void) { return 0; }\nvoid demo_exit(void) { }\n'
# No libc: a 32-bit program that only needs the compiler and ld (no i386 libc installed here).
_START32 = ('void _start(void) {\n'
            '    __asm__ volatile("movl $1, %eax\\n\\txorl %ebx, %ebx\\n\\tint $0x80");\n}\n')
PACKAGE_NOTE = {"type": "rpm", "name": "hello", "version": "1.0-1.fc40", "architecture": "x86_64",
                "osCpe": "cpe:/o:fedoraproject:fedora:40"}


def compile_samples(workdir: Path) -> list[SampleElf]:
    """Compile the sample ELF files into ``workdir`` (one gcc/ld/objcopy call each).

    Executables in each build-id style (sha1 with an FDO package note, md5, uuid, two 0xHEX,
    none), a hard link, a shared library, relocatable objects with and without an id (``ld -r``
    as kernel modules are linked), separate debug files by ``objcopy --only-keep-debug`` and by
    ``eu-strip -f`` (whose program headers are stale), a dwz multifile, and a 32-bit executable
    when gcc -m32 can link one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "src"
    src.mkdir(exist_ok=True)
    (src / "hello.c").write_text(_HELLO)
    (src / "lib.c").write_text(_LIB)
    (src / "module.c").write_text(_MODULE)
    out: list[SampleElf] = []

    def add(label: str, path: Path, install: str, kind: str, elf_class: int = 64) -> None:
        if kind in ("debug", "relocatable"):
            path.chmod(0o644)  # as packaged: only executables and libraries are 0755
        out.append(SampleElf(label, path, install, readelf_build_id(path), kind, elf_class))

    def hello(style: str, name: str, extra: Sequence[str] = ()) -> Path:
        path = workdir / name
        # A different greeting per file: identical inputs would give identical sha1 ids.
        run(["gcc", "-O1", "-g", f'-DGREETING="{name}"', f"-Wl,--build-id={style}", *extra,
             "-o", path, src / "hello.c"])
        return path

    note = ["-Xlinker", "--package-metadata=" + json.dumps(PACKAGE_NOTE, separators=(",", ":"))]
    sha1 = hello("sha1", "hello-sha1", note)
    add("exec-sha1", sha1, "/usr/bin/hello-sha1", "exec")
    add("exec-sha1-hardlink", sha1, "/usr/bin/hello", "exec")
    for style in ("md5", "uuid", "none"):
        add(f"exec-{style}", hello(style, f"hello-{style}"), f"/usr/bin/hello-{style}", "exec")
    for label, hex_id in HEX_IDS.items():
        add(f"exec-{label}", hello("0x" + hex_id, f"hello-{label}"), f"/usr/bin/hello-{label}",
            "exec")

    lib = workdir / "libdemo.so.1.0.0"
    run(["gcc", "-shared", "-fPIC", "-O1", "-g", "-Wl,-soname,libdemo.so.1",
         "-Wl,--build-id=sha1", "-o", lib, src / "lib.c"])
    # objcopy --only-keep-debug + --strip-debug --add-gnu-debuglink (find-debuginfo's way).
    lib_debug = workdir / "libdemo.so.1.0.0.debug"
    run(["objcopy", "--only-keep-debug", lib, lib_debug])
    run(["objcopy", "--strip-debug", f"--add-gnu-debuglink={lib_debug}", lib])
    add("shared-sha1", lib, "/usr/lib64/libdemo.so.1.0.0", "shared")
    add("debug-objcopy", lib_debug, "/usr/lib/debug/usr/lib64/libdemo.so.1.0.0.debug", "debug")

    # eu-strip -f: the .debug file keeps the executable's program headers, whose offsets are
    # stale there (.interp before the notes became NOBITS, the notes moved up).
    dbg = hello("sha1", "hello-dbg")
    dbg_debug, dbg_stripped = workdir / "hello-dbg.debug", workdir / "hello-dbg-stripped"
    run(["eu-strip", "--remove-comment", "-f", dbg_debug, "-o", dbg_stripped, dbg])
    add("exec-stripped", dbg_stripped, "/usr/bin/hello-dbg", "exec")
    add("debug-eu-strip", dbg_debug, "/usr/lib/debug/usr/bin/hello-dbg.debug", "debug")

    # dwz moves the DWARF two debug files share into a multifile with a build-id of its own,
    # which debuginfo packages ship under /usr/lib/debug/.dwz/ (as Fedora's find-debuginfo does).
    dwz_inputs = [hello("sha1", f"hello-dwz{n}") for n in (1, 2)]
    multifile = workdir / "hello.dwz"
    run(["dwz", "-m", multifile, "-M", "/usr/lib/debug/.dwz/hello-1.0-1.fc40.x86_64",
         *dwz_inputs])
    add("debug-dwz", multifile, "/usr/lib/debug/.dwz/hello-1.0-1.fc40.x86_64", "debug")

    obj = workdir / "module.o"
    run(["gcc", "-c", "-O1", "-o", obj, src / "module.c"])  # gcc -c alone writes no build-id
    module = workdir / "demo.ko"
    run(["ld", "-r", "--build-id=sha1", "-o", module, obj])
    add("relocatable-sha1", module, "/usr/lib/modules/6.1.0-demo/extra/demo.ko", "relocatable")
    add("relocatable-none", obj, "/usr/lib64/demo/module.o", "relocatable")

    hello32 = _compile_32bit(workdir, src)
    if hello32 is not None:
        add("exec-32bit", hello32, "/usr/lib/demo32/hello32", "exec", 32)
    return out


def _compile_32bit(workdir: Path, src: Path) -> Path | None:
    """A 32-bit executable: with libc when the multilib libraries are installed, else a libc-free
    one (still a real ld -m elf_i386 link); None when gcc cannot target i386 at all."""
    path = workdir / "hello32"
    try:
        run(["gcc", "-m32", '-DGREETING="hello 32"', "-Wl,--build-id=sha1", "-o", path,
             src / "hello.c"])
    except RuntimeError:
        (src / "start32.c").write_text(_START32)
        try:
            run(["gcc", "-m32", "-nostdlib", "-static", "-ffreestanding", "-Wl,--build-id=sha1",
                 "-o", path, src / "start32.c"])
        except RuntimeError:
            return None
    return path


# Other architectures: gcc here compiles for x86 only, so these are made by objcopy (which
# writes any class and byte order, for machine EM_NONE) holding one build-id note, with
# e_machine then set in the header. readelf reads them like any object of that machine.
FOREIGN = {  # label -> (objcopy format, e_machine)
    "ppc64": ("elf64-big", 21), "ppc64le": ("elf64-little", 21),
    "s390": ("elf32-big", 22), "s390x": ("elf64-big", 22),
}


def foreign_elves(workdir: Path) -> list[SampleElf]:
    """One relocatable object per FOREIGN architecture, installed as /usr/lib/foreign/<label>.o
    (build-id from readelf -n, as for every sample)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for index, (label, (fmt, machine)) in enumerate(FOREIGN.items()):
        order: Literal["big", "little"] = "big" if "-big" in fmt else "little"
        desc = bytes([0xA0 + index]) + bytes(range(1, 20))
        note = b"".join((len(b"GNU\0").to_bytes(4, order), len(desc).to_bytes(4, order),
                         (3).to_bytes(4, order), b"GNU\0", desc))
        (workdir / f"{label}.note").write_bytes(note)
        (workdir / f"{label}.payload").write_bytes(label.encode())
        path = workdir / f"{label}.o"
        run(["objcopy", "-I", "binary", "-O", fmt, "--add-section",
             f".note.gnu.build-id={workdir / f'{label}.note'}", workdir / f"{label}.payload", path])
        data = bytearray(path.read_bytes())
        data[18:20] = machine.to_bytes(2, order)  # e_machine, right after e_type
        path.write_bytes(bytes(data))
        out.append(SampleElf(label, path, f"/usr/lib/foreign/{label}.o", readelf_build_id(path),
                             "relocatable", 64 if "64" in fmt else 32))
    return out


def files_of(elves: Iterable[SampleElf], *labels: str) -> list[tuple[Path, str]]:
    """(source, install path) of the samples with these labels, in the order given."""
    by_label = {e.label: e for e in elves}
    return [(by_label[label].source, by_label[label].install_path)
            for label in labels if label in by_label]


DWZ_DIR = "/usr/lib/debug/.dwz/"


def dbgsym_files(elves: Iterable[SampleElf]) -> list[tuple[Path, str]]:
    """Debian -dbgsym layout: each debug file at /usr/lib/debug/.build-id/xx/rest.debug, a dwz
    multifile under /usr/lib/debug/.dwz/<triplet>/."""
    return [
        (e.source, f"{DWZ_DIR}x86_64-linux-gnu/hello.debug")
        if e.install_path.startswith(DWZ_DIR)
        else (e.source, f"/usr/lib/debug/.build-id/{e.build_id[:2]}/{e.build_id[2:]}.debug")
        for e in elves if e.debug and e.build_id
    ]


def _stage(root: Path, files: Files) -> None:
    """Copy ``files`` under ``root`` keeping their modes; repeated sources become hard links."""
    placed: dict[tuple[int, int], Path] = {}
    for source, install in files:
        if not install.startswith("/") or ".." in install.split("/"):
            raise ValueError(f"install path must be absolute and plain: {install!r}")
        target = root / install.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        st = source.stat()
        key = (st.st_dev, st.st_ino)
        if key in placed:
            os.link(placed[key], target)
        else:
            shutil.copy2(source, target)
            placed[key] = target


# --- rpm ----------------------------------------------------------------------------------------

def _rpm_spec(name: str, version: str, release: str, epoch: int | None, arch: str,
              payload: str, build_id_links: str, stage: Path | None, paths: Iterable[str],
              source: str | None = None, macros: Sequence[str] = (),
              install: Sequence[str] = ()) -> str:
    # No debuginfo extraction, no stripping, no brp scripts: the packaged files must stay
    # byte-identical to the samples so their build-ids are the ones readelf gave us.
    lines = [
        f"Name: {name}", f"Version: {version}", f"Release: {release}",
        *([f"Epoch: {epoch}"] if epoch is not None else []),
        f"Summary: Darkserver sample package {name}", "License: MIT",
        f"BuildArch: {arch}" if stage is not None else "",
        *([f"Source0: {source}"] if source else []),
        "%global debug_package %{nil}", "%global __os_install_post %{nil}",
        f"%define _build_id_links {build_id_links}", "%define _missing_build_ids_terminate_build 0",
        f"%define _binary_payload {payload}", *macros,
        "%description", f"Sample package {name} built by darkimport.samples.",
    ]
    if stage is not None:
        lines += ["%install", "mkdir -p %{buildroot}", f"cp -a '{stage}/.' %{{buildroot}}/",
                  *install,
                  "%files", *(f'"{p}"' for p in paths)]
    return "\n".join(lines) + "\n"


def _rpmbuild(topdir: Path, spec: Path, mode: str, arch: str) -> None:
    run(["rpmbuild", mode, "--nodeps", "--target", arch,
         "--define", f"_topdir {topdir}", "--define", f"_tmppath {topdir / 'tmp'}",
         "--define", "_buildhost darkserver.samples", spec])


def build_rpm(workdir: Path, name: str, version: str, release: str, files: Files,
              compression: str = "gzip", *, arch: str = "x86_64", epoch: int | None = None,
              build_id_links: str = "none") -> Path:
    """A binary rpm made by ``rpmbuild -bb`` holding ``files``; returns its path.

    ``compression`` is one of RPM_PAYLOADS; ``build_id_links`` is rpm's ``%_build_id_links``
    ("none", or "compat" as Fedora does, which adds /usr/lib/.build-id links).
    """
    topdir = Path(tempfile.mkdtemp(prefix=f"rpm-{name}-", dir=workdir)).resolve()
    stage = topdir / "stage"
    _stage(stage, files)
    spec = topdir / f"{name}.spec"
    spec.write_text(_rpm_spec(name, version, release, epoch, arch, RPM_PAYLOADS[compression],
                              build_id_links, stage, sorted({p for _, p in files})))
    _rpmbuild(topdir, spec, "-bb", arch)
    shutil.rmtree(topdir / "BUILDROOT", ignore_errors=True)
    return topdir / "RPMS" / arch / f"{name}-{version}-{release}.{arch}.rpm"


def build_source_rpm(workdir: Path, name: str = "hello", version: str = "1.0",
                     release: str = "1.fc40") -> Path:
    """A source rpm (``rpmbuild -bs``) with one tarball: the importer must skip it."""
    topdir = Path(tempfile.mkdtemp(prefix=f"srpm-{name}-", dir=workdir)).resolve()
    tree = topdir / f"{name}-{version}"
    tree.mkdir()
    (tree / "hello.c").write_text(_HELLO)
    (topdir / "SOURCES").mkdir()
    tarball = f"{name}-{version}.tar.gz"
    run(["tar", "-czf", topdir / "SOURCES" / tarball, "-C", topdir, tree.name])
    spec = topdir / f"{name}.spec"
    spec.write_text(_rpm_spec(name, version, release, None, "x86_64", RPM_PAYLOADS["gzip"],
                              "none", None, [], tarball))
    _rpmbuild(topdir, spec, "-bs", "x86_64")
    return topdir / "SRPMS" / f"{name}-{version}-{release}.src.rpm"


def build_large_rpm(workdir: Path, files: Files, size: int = 4 * GIB, name: str = "bigdata",
                    compression: str = "zstd-fast") -> Path:
    """An rpm whose payload is *stripped* cpio (magic 07070X, file indexes instead of names).

    rpm 4.18 writes that only when a file is >= 4 GiB (LONGFILESIZES), so a sparse zero-filled
    file of ``size`` bytes goes in at /usr/share/<name>/huge.img between the ``files`` (which
    sort before or after it). zstd level 1 squeezes the zeros to ~150 KB; rpmbuild still reads
    them all (digest + payload), about 20 s here.
    """
    topdir = Path(tempfile.mkdtemp(prefix=f"rpm-{name}-", dir=workdir)).resolve()
    stage = topdir / "stage"
    _stage(stage, files)
    huge_path = f"/usr/share/{name}/huge.img"
    # Made by truncate in %install, straight into the buildroot: any copy of it (shutil, even
    # cp -a here) writes gigabytes of real zeros and triples the time.
    make_huge = (f"mkdir -p %{{buildroot}}/usr/share/{name}",
                 f"truncate -s {size} %{{buildroot}}{huge_path}")
    try:
        spec = topdir / f"{name}.spec"
        payload = "w1.zstdio" if compression == "zstd-fast" else RPM_PAYLOADS[compression]
        spec.write_text(_rpm_spec(name, "1.0", "1.fc40", None, "x86_64", payload, "none", stage,
                                  sorted({huge_path, *(p for _, p in files)}),
                                  install=make_huge))
        _rpmbuild(topdir, spec, "-bb", "x86_64")
    finally:  # never leave 4 GiB files behind
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(topdir / "BUILDROOT", ignore_errors=True)
    return topdir / "RPMS" / "x86_64" / f"{name}-1.0-1.fc40.x86_64.rpm"


def build_fedora_pair(workdir: Path, elves: Sequence[SampleElf], name: str = "hello",
                      version: str = "1.0", release: str = "1.fc40",
                      compression: str = "zstd") -> tuple[Path, Path]:
    """A main rpm and its -debuginfo laid out as Fedora's rpmbuild does: build-id links
    (``%_build_id_links compat``) and debug files named ``/usr/lib/debug/<path>-V-R.A.debug``.
    The main rpm holds every non-debug sample (with and without ids), the other the debug ones.
    """
    suffix = f"-{version}-{release}.x86_64.debug"
    main = [(e.source, e.install_path) for e in elves if not e.debug]
    debug = [(e.source, e.install_path.removesuffix(".debug") + suffix)
             for e in elves if e.debug]
    return (build_rpm(workdir, name, version, release, main, compression,
                      build_id_links="compat"),
            build_rpm(workdir, f"{name}-debuginfo", version, release, debug, compression,
                      build_id_links="compat"))


# --- deb ----------------------------------------------------------------------------------------

def build_deb(workdir: Path, name: str, version: str, arch: str, files: Files,
              compression: str = "xz", *, control: Mapping[str, str] | None = None,
              md5sums: bool = True) -> Path:
    """A .deb made by ``dpkg-deb --build`` holding ``files``; returns its path.

    ``compression`` is one of DEB_COMPRESSIONS. dpkg-deb 1.21 no longer writes bzip2, which
    old archives still hold: that deb is built uncompressed by dpkg-deb and reassembled with
    the real ``ar`` around a data.tar.bz2 made by the real ``bzip2`` (dpkg still reads it).
    ``control`` adds fields (e.g. Source, Build-Ids) to the control file. ``md5sums`` writes
    DEBIAN/md5sums with the real ``md5sum`` as debhelper's dh_md5sums does (every package
    built by debhelper has one; dpkg-deb alone writes none).
    """
    if compression not in DEB_COMPRESSIONS:
        raise ValueError(f"unknown deb compression {compression!r}")
    topdir = Path(tempfile.mkdtemp(prefix=f"deb-{name}-", dir=workdir)).resolve()
    root = topdir / "root"
    _stage(root, files)
    fields = {"Package": name, "Version": version, "Architecture": arch,
              "Maintainer": "Darkserver samples <samples@darkserver.invalid>",
              "Section": "misc", "Priority": "optional", **(control or {}),
              "Description": f"Darkserver sample package {name}\n built by darkimport.samples."}
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        "".join(f"{k}: {v}\n" for k, v in fields.items()))
    installed = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                       if p.is_file() and not p.is_symlink()
                       and p.parts[len(root.parts)] != "DEBIAN")
    if md5sums and installed:
        (root / "DEBIAN" / "md5sums").write_text(run(["md5sum", "--", *installed], cwd=root))
    plain_version = version.split(":", 1)[-1]
    out = topdir / f"{name}_{plain_version}_{arch}.deb"
    dpkg_compression = "none" if compression == "bzip2" else compression
    run(["dpkg-deb", "--root-owner-group", f"-Z{dpkg_compression}", "--build", root, out])
    if compression == "bzip2":
        _rebuild_with_bzip2(out, topdir / "ar")
    return out


def _rebuild_with_bzip2(deb: Path, scratch: Path) -> None:
    scratch.mkdir()
    run(["ar", "x", deb.resolve()], cwd=scratch)
    run(["bzip2", "-9", "data.tar"], cwd=scratch)
    deb.unlink()
    # Member order is part of the format: debian-binary, control, data.
    run(["ar", "rcS", deb.resolve(), "debian-binary", "control.tar", "data.tar.bz2"], cwd=scratch)
    shutil.rmtree(scratch)


# --- the sample set -----------------------------------------------------------------------------

def build_sample_set(outdir: Path) -> list[Path]:
    """Compile the samples and package them: 6 rpms (gzip, xz, zstd, bzip2, lzma, none) and
    5 debs (xz, gzip, zstd, bzip2, none, a -dbgsym among them). Only the packages land in
    ``outdir``; returns their paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="darkserver-samples-") as tmp:
        work = Path(tmp)
        elves = compile_samples(work / "elf")
        f = files_of
        built = [
            build_rpm(work, "hello", "1.0", "1.fc40", f(
                elves, "exec-sha1", "exec-sha1-hardlink", "exec-md5", "exec-uuid", "exec-hex8",
                "exec-none", "exec-stripped", "exec-32bit"), "gzip"),
            build_rpm(work, "hello-debuginfo", "1.0", "1.fc40",
                      f(elves, "debug-objcopy", "debug-eu-strip", "debug-dwz"), "xz"),
            build_rpm(work, "libdemo", "2.1", "3.el9", f(elves, "shared-sha1", "exec-hex32"),
                      "zstd", epoch=1),
            build_rpm(work, "kmod-demo", "0.5", "1.fc39",
                      f(elves, "relocatable-sha1", "relocatable-none"), "bzip2"),
            build_rpm(work, "hello-legacy", "0.9", "7.el7", f(elves, "exec-md5"), "lzma"),
            build_rpm(work, "hello-plain", "1.0", "1.fc41", f(elves, "exec-uuid", "shared-sha1"),
                      "none"),
            # The first deb by name is compressed with a checksum (xz): tests corrupt its tail.
            build_deb(work, "hello-dbgsym", "1.0-1", "amd64", dbgsym_files(elves), "xz",
                      control={"Source": "hello", "Build-Ids": " ".join(
                          e.build_id for e in elves if e.debug and e.build_id
                          and not e.install_path.startswith(DWZ_DIR))}),
            build_deb(work, "hello", "1.0-1", "amd64", f(
                elves, "exec-sha1", "exec-sha1-hardlink", "exec-none", "exec-stripped"), "gzip"),
            build_deb(work, "libdemo1", "1:2.1-3+deb12u1", "amd64", f(elves, "shared-sha1"),
                      "zstd", control={"Source": "libdemo (2.1-3)"}),
            build_deb(work, "kmod-demo", "0.5-1", "amd64", f(elves, "relocatable-sha1"),
                      "bzip2"),
            build_deb(work, "plain-tools", "1.0", "amd64", f(elves, "exec-uuid", "exec-hex32"),
                      "none"),
        ]
        return [Path(shutil.copy2(p, outdir / p.name)) for p in built]


# --- broken packages ----------------------------------------------------------------------------

def payload_offset(package: Path) -> int:
    """Where the compressed payload starts: after an rpm's headers, at a deb's data.tar member."""
    data = package.read_bytes()
    if data[:4] == b"\xed\xab\xee\xdb":
        at = _rpm_header_end(data, 96)
        at = _rpm_header_end(data, (at + 7) & ~7)  # the signature header is padded to 8
        return at
    if data[:8] == b"!<arch>\n":
        at = 8
        while at + 60 <= len(data):
            member, size = data[at:at + 16].decode().strip().rstrip("/"), int(data[at + 48:at + 58])
            if member.startswith("data.tar"):
                return at + 60
            at += 60 + size + (size & 1)
    raise ValueError(f"{package}: neither an rpm nor a deb with a data.tar member")


def _rpm_header_end(data: bytes, at: int) -> int:
    if data[at:at + 4] != b"\x8e\xad\xe8\x01":
        raise ValueError(f"no rpm header magic at {at}")
    count, length = int.from_bytes(data[at + 8:at + 12]), int.from_bytes(data[at + 12:at + 16])
    return at + 16 + 16 * count + length


def truncate_copy(package: Path, out: Path, at_fraction: float = 0.5) -> Path:
    """A copy of ``package`` cut after ``at_fraction`` of its bytes."""
    data = package.read_bytes()
    out.write_bytes(data[:int(len(data) * at_fraction)])
    return out


def corrupt_copy(package: Path, out: Path, offset: int | None = None, length: int = 16) -> Path:
    """A copy of ``package`` with ``length`` bytes inverted at ``offset`` (default: the middle
    of the payload, so that the headers still parse and decompression has to notice)."""
    data = bytearray(package.read_bytes())
    if offset is None:
        start = payload_offset(package)
        offset = start + (len(data) - start) // 2
    if not 0 <= offset < len(data):
        raise ValueError(f"offset {offset} outside {package} ({len(data)} bytes)")
    for i in range(offset, min(offset + length, len(data))):
        data[i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m darkimport.samples OUTDIR``: build the sample packages (the demo's input)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m darkimport.samples", description=main.__doc__)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--print-one-build-id", action="store_true",
                        help="print a build-id from the already built set instead of building")
    args = parser.parse_args(argv)
    if args.print_one_build_id:
        from darkimport.run.scan import scan_path

        for package in sorted(args.outdir.glob("hello-1.0-1.*.rpm")):
            scan = scan_path(package)
            if scan.elves:
                print(sorted(scan.elves, key=lambda e: e.path)[0].build_id.hex())
                return 0
        return 1
    packages = build_sample_set(args.outdir)
    print(f"built {len(packages)} sample packages in {args.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
