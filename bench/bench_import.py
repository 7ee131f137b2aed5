"""Import benchmark: darkserver-import versus `debuginfod -R -U` on the same real packages.

    .venv/bin/python bench/bench_import.py [--jobs N] [--no-debuginfod] [--no-rpms]

Corpus: >= 40 real Debian packages (apt-get download, see corpus-debs.txt; a kernel image,
libllvm, glibc, systemd, coreutils, ...) plus rpms built with rpmbuild from the real binaries
inside some of them (bench/corpus/rpm). Prints packages/s, ELF files/s, MB/s and the peak
resident memory of the whole importer process tree, then debuginfod's wall time to index the
same directories and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPUS, PeakSampler, corpus_debs  # noqa: E402

BIN = Path(sys.executable).parent
RPM_SOURCES = ["coreutils", "bash", "libc6", "systemd", "openssl", "git", "libllvm15"]


def corpus_rpms(debs: list[Path], directory: Path = CORPUS / "rpm") -> list[Path]:
    """rpms made by rpmbuild from the real binaries of some corpus debs (xz and zstd)."""
    directory.mkdir(parents=True, exist_ok=True)
    have = sorted(directory.glob("*.rpm"))
    if have:
        return have
    from darkimport import samples

    with tempfile.TemporaryDirectory() as tmp:
        for index, name in enumerate(RPM_SOURCES):
            deb = next(d for d in debs if d.name.startswith(name + "_"))
            root = Path(tmp) / name
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            files = [
                (p, "/" + str(p.relative_to(root)))
                for p in sorted(root.rglob("*"))
                if p.is_file() and not p.is_symlink()
            ]
            compression = "xz" if index % 2 == 0 else "zstd"
            (Path(tmp) / "build").mkdir(exist_ok=True)
            built = samples.build_rpm(
                Path(tmp) / "build", f"bench-{name}", "1.0", "1.fc40", files, compression
            )
            shutil.copy(built, directory / built.name)
    return sorted(directory.glob("*.rpm"))


def run_darkserver(dirs: list[Path], jobs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3"}
        subprocess.run([str(BIN / "darkserver"), "migrate", "-v0"], env=env, check=True)
        start = time.monotonic()
        proc = subprocess.Popen(
            [str(BIN / "darkserver-import"), "--json", "--jobs", str(jobs), *map(str, dirs)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        sampler = PeakSampler(proc.pid)
        out, err = proc.communicate()
        wall = time.monotonic() - start
        peak = sampler.stop()
        if proc.returncode != 0:
            print(err, file=sys.stderr)
        summary = json.loads(out)
    return {"wall": wall, "peak": peak, **{k: summary[k] for k in
            ("packages", "elf_files", "build_ids", "rows", "without_build_id", "failed")}}


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)(\{[^}]*\})?\s+([0-9.e+-]+)$", line)
        if m:
            key = m.group(1) + (m.group(2) or "")
            values[key] = values.get(key, 0.0) + float(m.group(3))
    return values


def run_debuginfod(dirs: list[Path], archives: int, jobs: int) -> dict[str, float]:
    port = 18000 + os.getpid() % 1000
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        proc = subprocess.Popen(
            ["debuginfod", "-R", "-U", "-d", f"{tmp}/dbgi.sqlite", "-p", str(port),
             "-c", str(jobs), "-t", "0", "-g", "0", *map(str, dirs)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        sampler = PeakSampler(proc.pid)
        try:
            while True:
                time.sleep(0.1)
                try:
                    m = _metrics(port)
                except OSError:
                    continue
                scanned = sum(v for k, v in m.items() if k.startswith("scanned_files_total"))
                if (scanned >= archives and m.get('thread_busy{role="scan"}', 1) == 0
                        and m.get('thread_work_pending{role="scan"}', 1) == 0):
                    break
            wall = time.monotonic() - start
        finally:
            proc.terminate()
            proc.wait()
        return {"wall": wall, "peak": sampler.stop(), "archives": scanned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-debuginfod", action="store_true")
    parser.add_argument("--no-rpms", action="store_true")
    args = parser.parse_args()

    debs = corpus_debs()
    rpms = [] if args.no_rpms else corpus_rpms(debs)
    dirs = [CORPUS / "deb"] + ([] if args.no_rpms else [CORPUS / "rpm"])
    packages = debs + rpms
    size_mb = sum(p.stat().st_size for p in packages) / 1e6
    print(f"corpus: {len(debs)} debs + {len(rpms)} rpms, {size_mb:.0f} MB; jobs={args.jobs}")

    ds = run_darkserver(dirs, args.jobs)
    print(f"darkserver-import: {ds['wall']:.2f} s wall, {ds['packages'] / ds['wall']:.1f} "
          f"packages/s, {ds['elf_files'] / ds['wall']:.0f} ELF files/s, "
          f"{size_mb / ds['wall']:.1f} MB/s, peak PSS {ds['peak'] / 2**20:.0f} MiB "
          f"(process tree); {ds['elf_files']:.0f} ELF files, {ds['build_ids']:.0f} build-ids, "
          f"{ds['rows']:.0f} rows, {ds['without_build_id']:.0f} without id, "
          f"{ds['failed']:.0f} failed")
    if not args.no_debuginfod:
        dbg = run_debuginfod(dirs, len(packages), args.jobs)
        print(f"debuginfod -R -U: {dbg['wall']:.2f} s wall, peak PSS {dbg['peak'] / 2**20:.0f} "
              f"MiB, {dbg['archives']:.0f} archives scanned")
        print(f"ratio darkserver/debuginfod: {ds['wall'] / dbg['wall']:.2f} (target <= 0.60)")


if __name__ == "__main__":
    main()
