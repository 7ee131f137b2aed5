"""How close the importer is to the floor, and what a re-import of an unchanged tree costs.

    .venv/bin/python bench/bench_floor.py [--jobs N] [--no-rpms] [--repeat 2]

Same corpus as bench_import.py (real debs + rpms built from them). In one run, each measured
``--repeat`` times and the best kept (the machine is shared: the minimum is the least
disturbed figure):

- importer, first import into an empty SQLite database: CPU-s of the whole process tree
  (its workers and external xz/zstd included) and wall seconds;
- importer, the same unchanged tree again (known files are skipped unread): CPU-s and wall;
- the C tools decoding the same payloads once: ``ar p PKG data.tar.* | xz -dc`` (zstd -dc,
  gzip -dc, ...) for debs and ``rpm2cpio`` for rpms, output to /dev/null: CPU-s, one package
  at a time and (with ``--jobs`` over 1) as many at a time as the importer's jobs.

Prints importer CPU-s / C tools CPU-s (the floor ratio) and re-import / first import.
With ``--repo`` the same packages are also laid out as a dnf/yum repository (createrepo_c)
and a Debian archive (apt-ftparchive), served by http.server on a free port, and imported
twice with ``darkserver-import repo``: the second run downloads nothing.
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import contextlib
import functools
import http.server
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import corpus_rpms  # noqa: E402
from common import CORPUS, corpus_debs  # noqa: E402

BIN = Path(sys.executable).parent
_DECODERS = {".xz": "xz -dc", ".zst": "zstd -dcq", ".gz": "gzip -dc", ".bz2": "bzip2 -dc",
             ".lzma": "xz -dc --format=lzma", "": "cat"}


def byte_compile() -> None:
    """Compile the project's modules once, before anything is timed. An editable install has
    no .pyc files, and with PYTHONDONTWRITEBYTECODE=1 (set in some shells and CI) every run
    would compile ~40 modules again and count that as importer CPU; an installed package
    ships them compiled."""
    root = Path(__file__).resolve().parent.parent
    for package in ("darkcore", "darkimport", "darkserver", "darkclient"):
        compileall.compile_dir(root / package, quiet=1, workers=1)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(CPU-s of the process tree, wall seconds, stdout) of one command run to its end."""
    cpu, wall = children_cpu(), time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed:\n{proc.stderr}")
    return children_cpu() - cpu, time.monotonic() - wall, proc.stdout


def deb_data_member(deb: Path) -> str:
    names = subprocess.run(["ar", "t", str(deb)], capture_output=True, text=True,
                           check=True).stdout.split()
    return next(n for n in names if n.startswith("data.tar"))


def c_tools_lines(debs: list[Path], rpms: list[Path]) -> list[str]:
    """One shell command per package that decodes its payload once, as the C tools do;
    biggest package first, the importer's order."""
    lines = []
    for pkg in sorted(debs + rpms, key=lambda p: (-p.stat().st_size, str(p))):
        if pkg.suffix == ".rpm":
            lines.append(f"rpm2cpio {shlex.quote(str(pkg))} >/dev/null")
            continue
        member = deb_data_member(pkg)
        decoder = _DECODERS[Path(member).suffix if member != "data.tar" else ""]
        lines.append(f"ar p {shlex.quote(str(pkg))} {member} | {decoder} >/dev/null")
    return lines


def c_tools_script(debs: list[Path], rpms: list[Path]) -> str:
    """The C tools' commands as one shell script (one package at a time)."""
    return "\n".join(c_tools_lines(debs, rpms))


def timed_parallel(lines: list[str], jobs: int) -> tuple[float, float]:
    """(CPU-s, wall) of the commands run ``jobs`` at a time, as the importer runs its scans:
    on a shared machine two processes at once cost more CPU-s each than one after the other
    (caches, memory bandwidth), so the floor is measured under the same parallelism."""
    cpu, wall = children_cpu(), time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for done in pool.map(lambda line: subprocess.run(["sh", "-e", "-c", line]), lines):
            if done.returncode != 0:
                raise SystemExit(f"C tools failed: {done.args}")
    return children_cpu() - cpu, time.monotonic() - wall


def import_twice(dirs: list[Path], jobs: int, external: str = "auto"
                 ) -> tuple[tuple[float, float], tuple[float, float], dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp}/floor.sqlite3",
                            "DARKSERVER_EXTERNAL_DECOMPRESS": external}
        subprocess.run([str(BIN / "darkserver"), "migrate", "-v0"], env=env, check=True)
        argv = [str(BIN / "darkserver-import"), "--json", "--jobs", str(jobs), *map(str, dirs)]
        cpu1, wall1, out1 = timed(argv, env)
        cpu2, wall2, out2 = timed(argv, env)
    second = json.loads(out2)
    assert second["packages"] == 0, "the second import found new packages"
    return (cpu1, wall1), (cpu2, wall2), json.loads(out1)


def make_repos(root: Path, debs: list[Path], rpms: list[Path]) -> None:
    """root/rpm: createrepo_c over the rpms; root/deb: pool + dists/bench via apt-ftparchive.
    Hard links, not copies: the corpus is ~250 MB."""
    (root / "rpm" / "Packages").mkdir(parents=True)
    for rpm in rpms:
        os.link(rpm, root / "rpm" / "Packages" / rpm.name)
    subprocess.run(["createrepo_c", "-q", str(root / "rpm")], check=True)
    pool = root / "deb" / "pool" / "main"
    pool.mkdir(parents=True)
    for deb in debs:
        os.link(deb, pool / deb.name)
    index = root / "deb" / "dists" / "bench" / "main" / "binary-amd64"
    index.mkdir(parents=True)
    packages = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=root / "deb",
                              check=True, capture_output=True).stdout
    (index / "Packages").write_bytes(packages)
    subprocess.run(["xz", "-f", str(index / "Packages")], check=True)
    release = subprocess.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Suite=bench",
         "-o", "APT::FTPArchive::Release::Components=main",
         "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", "dists/bench"],
        cwd=root / "deb", check=True, capture_output=True).stdout
    (root / "deb" / "dists" / "bench" / "Release").write_bytes(release)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def repo_twice(debs: list[Path], rpms: list[Path], jobs: int) -> list[tuple[float, float]]:
    """(CPU-s, wall) of: rpm repo first, rpm repo again, Debian first, Debian again."""
    with tempfile.TemporaryDirectory(dir=CORPUS) as tmp:
        make_repos(Path(tmp), debs, rpms)
        env = os.environ | {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp}/repo.sqlite3"}
        subprocess.run([str(BIN / "darkserver"), "migrate", "-v0"], env=env, check=True)
        figures = []
        with serve(Path(tmp)) as url:
            for extra in ([f"{url}/rpm/"], [f"{url}/deb/", "--suite", "bench"]):
                argv = [str(BIN / "darkserver-import"), "repo", "--json", "-j", str(jobs),
                        *extra]
                for _ in range(2):
                    cpu, wall, out = timed(argv, env)
                    summary = json.loads(out)
                    assert summary["failed"] == 0, summary["failures"]
                    figures.append((cpu, wall))
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-rpms", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--repo", action="store_true",
                        help="also import the corpus as repositories over local HTTP")
    parser.add_argument("--only-repo", action="store_true", help="only the --repo part")
    parser.add_argument("--in-process", action="store_true",
                        help="also import with DARKSERVER_EXTERNAL_DECOMPRESS=0 (no xz -T0)")
    args = parser.parse_args()

    byte_compile()
    debs = corpus_debs()
    rpms = [] if args.no_rpms else corpus_rpms(debs)
    dirs = [CORPUS / "deb"] + ([] if args.no_rpms else [CORPUS / "rpm"])
    size_mb = sum(p.stat().st_size for p in debs + rpms) / 1e6
    print(f"corpus: {len(debs)} debs + {len(rpms)} rpms, {size_mb:.0f} MB; jobs={args.jobs}; "
          f"best of {args.repeat}")
    if args.repo or args.only_repo:
        best = [(float("inf"), float("inf"))] * 4
        for _ in range(args.repeat):
            best = [min(a, b) for a, b in zip(best, repo_twice(debs, rpms, args.jobs),
                                              strict=True)]
        for name, (one, two) in (("rpm-md", best[0:2]), ("debian", best[2:4])):
            print(f"repo {name} over HTTP: first {one[0]:.2f} CPU-s, {one[1]:.2f} s wall; "
                  f"again {two[0]:.2f} CPU-s, {two[1]:.2f} s wall = {two[1] / one[1]:.3f}x")
        if args.only_repo:
            return
    script = c_tools_script(debs, rpms)
    lines = c_tools_lines(debs, rpms)
    first = again = tools = tools_par = inproc = (float("inf"), float("inf"))
    summary: dict[str, object] = {}
    for _ in range(args.repeat):
        one, two, summary = import_twice(dirs, args.jobs)
        first = min(first, one)
        again = min(again, two)
        cpu, wall, _out = timed(["sh", "-e", "-c", script])
        tools = min(tools, (cpu, wall))
        if args.jobs > 1:
            tools_par = min(tools_par, timed_parallel(lines, args.jobs))
        if args.in_process:
            inproc = min(inproc, import_twice(dirs, args.jobs, external="0")[0])
    print(f"importer, first import: {first[0]:.2f} CPU-s, {first[1]:.2f} s wall "
          f"({summary.get('packages')} packages, {summary.get('rows')} rows, "
          f"{summary.get('failed')} failed)")
    print(f"C tools decoding the same payloads once: {tools[0]:.2f} CPU-s "
          f"({tools[1]:.2f} s wall, one at a time)")
    print(f"importer / C tools (CPU): {first[0] / tools[0]:.2f}")
    if args.jobs > 1:
        print(f"C tools {args.jobs} at a time, as the importer's jobs: {tools_par[0]:.2f} CPU-s "
              f"({tools_par[1]:.2f} s wall); importer / C tools (CPU): "
              f"{first[0] / tools_par[0]:.2f}")
    if args.in_process:
        print(f"importer without the external xz -T0 (DARKSERVER_EXTERNAL_DECOMPRESS=0): "
              f"{inproc[0]:.2f} CPU-s, {inproc[1]:.2f} s wall; / C tools (CPU): "
              f"{inproc[0] / tools[0]:.2f}")
    print(f"re-import of the unchanged tree: {again[0]:.2f} CPU-s, {again[1]:.2f} s wall = "
          f"{again[1] / first[1]:.3f}x the first import's wall time, "
          f"{again[0] / first[0]:.3f}x its CPU")


if __name__ == "__main__":
    main()
