"""From a core to source lines: `darkclient serve` against real elfutils debuginfod, for gdb.

Builds N shared libraries with gcc -g (sources named as Fedora's debugedit names them,
/usr/src/debug/NAME-1.0-1.fc40.x86_64/), a program linked against all of them that aborts, and
its core (gdb). Each library is packaged as Fedora does, by rpmbuild: NAME (the stripped
library), NAME-debuginfo (its .debug file), NAME-debugsource (its source). The real importer
puts every rpm in the real Darkserver (gunicorn, SQLite); a plain HTTP server serves the rpms.
Then, with an empty gdb/debuginfod-client cache each time, for each of `darkclient serve` and
`debuginfod -R` (indexing the same rpms), in alternating order run after run:

- gdb with `set debuginfod enabled on` loads the core: a debug file for every module, then
  `bt` and `list` (a source file); cold (a new `serve` with an empty cache), then warm; then
  cold again with `darkclient prefetch CORE` started beside gdb (counted in the time);
- debuginfod-find fetches every library's source file, one after the other; cold, then warm.

Last, serve's own log says where its time went (requests and seconds by kind).

    .venv/bin/python bench/bench_serve.py [--libs 110] [--runs 2] [--mirror-ms 0]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_client import BIN, FILE_SERVER, PY, ROOT, free_port, wait_http  # noqa: E402

SPEC = """\
%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%global _build_id_links none
%define _binary_payload w19.zstdio
Name: {name}
Version: 1.0
Release: 1.fc40
Summary: bench library
License: MIT
BuildArch: x86_64
%description
bench
%package debuginfo
Summary: debug info
%description debuginfo
debug
%package debugsource
Summary: debug sources
%description debugsource
sources
%install
mkdir -p %{{buildroot}}/usr/lib64 %{{buildroot}}/usr/lib/debug/usr/lib64 %{{buildroot}}{srcdir}
install -m 0755 {stripped} %{{buildroot}}/usr/lib64/lib{name}.so
install -m 0644 {debug} %{{buildroot}}/usr/lib/debug/usr/lib64/lib{name}.so-1.0-1.fc40.x86_64.debug
install -m 0644 {source} %{{buildroot}}{srcdir}/{cname}
%files
/usr/lib64/lib{name}.so
%files debuginfo
/usr/lib/debug/usr/lib64/lib{name}.so-1.0-1.fc40.x86_64.debug
%files debugsource
{srcdir}/{cname}
"""

IMPORT = r"""
import sys, django
django.setup()
from pathlib import Path
from darkimport.run.records import Provenance
from darkimport.run.scan import scan_path
from darkimport.run.store import store_scan
base, rpms = sys.argv[1], sorted(Path(sys.argv[2]).glob("*.rpm"))
for rpm in rpms:
    store_scan(scan_path(rpm), Provenance(url=f"{base}/{rpm.name}"))
print(len(rpms))
"""


def run(args: list[str], **kw: object) -> None:
    subprocess.run(args, check=True, capture_output=True, **kw)  # type: ignore[call-overload]


def build(work: Path, libs: int) -> tuple[Path, Path, list[tuple[str, str]]]:
    """(program, core, [(build-id, source path)]) with every rpm in work/rpms."""
    rpms = work / "rpms"
    rpms.mkdir()
    (work / "libs").mkdir()
    sources: list[tuple[str, str]] = []

    def one(i: int) -> tuple[str, str]:
        name, d = f"bench{i}", work / f"lib{i}"
        d.mkdir()
        cname = f"l{i}.c"
        srcdir = f"/usr/src/debug/{name}-1.0-1.fc40.x86_64"
        (d / cname).write_text(f"int bench_f{i}(int x)\n{{\n  return x + {i};\n}}\n")
        run(["gcc", "-g", "-O1", "-shared", "-fPIC", f"-fdebug-prefix-map={d}={srcdir}",
             "-Wl,--build-id", "-o", f"lib{name}.so", cname], cwd=d)
        run(["objcopy", "--only-keep-debug", f"lib{name}.so", "x.debug"], cwd=d)
        run(["strip", "--strip-all", "-o", "x.stripped", f"lib{name}.so"], cwd=d)
        # The program maps the stripped library, as installed from the main rpm: gdb needs
        # every library's debug file from the server.
        shutil.copyfile(d / "x.stripped", work / "libs" / f"lib{name}.so")
        (d / "x.spec").write_text(SPEC.format(name=name, srcdir=srcdir, cname=cname,
                                              stripped=d / "x.stripped", debug=d / "x.debug",
                                              source=d / cname))
        run(["rpmbuild", "-bb", "--define", f"_topdir {d / 'top'}", str(d / "x.spec")])
        for rpm in (d / "top" / "RPMS" / "x86_64").glob("*.rpm"):
            shutil.move(str(rpm), rpms / rpm.name)
        out = subprocess.run(["readelf", "-n", str(d / f"lib{name}.so")], capture_output=True,
                             text=True, check=True).stdout
        bid = re.search(r"Build ID: ([0-9a-f]+)", out)
        assert bid is not None
        return bid.group(1), f"{srcdir}/{cname}"

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        sources = list(pool.map(one, range(libs)))
    main = work / "main"
    main.mkdir()
    calls = "".join(f"int bench_f{i}(int);\n" for i in range(libs))
    body = "".join(f"  s += bench_f{i}(s);\n" for i in range(libs))
    (main / "main.c").write_text(f"#include <stdlib.h>\n{calls}int main(void) {{\n"
                                 f"  int s = 0;\n{body}  if (s) abort();\n  return 0;\n}}\n")
    run(["gcc", "-O1", "-Wl,--build-id", "-o", "benchmain", "main.c", f"-L{work}/libs",
         *[f"-lbench{i}" for i in range(libs)], f"-Wl,-rpath,{work}/libs",
         "-Wl,--no-as-needed"], cwd=main)
    core = work / "bench.core"
    subprocess.run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                    "-ex", "run", "-ex", f"generate-core-file {core}", "./benchmain"],
                   cwd=main, capture_output=True, check=True, timeout=600)
    return main / "benchmain", core, sources


def gdb_session(url: str, program: Path, core: Path, cache: Path,
                prefetch: list[str] | None = None) -> tuple[float, str]:
    """gdb's seconds from start to exit; with ``prefetch`` (a command), that command is
    started first, beside gdb, and counted in the time."""
    env = os.environ | {"DEBUGINFOD_URLS": url, "DEBUGINFOD_CACHE_PATH": str(cache),
                        "DEBUGINFOD_TIMEOUT": "60"}
    t = time.perf_counter()
    hint = subprocess.Popen(prefetch, stdout=subprocess.DEVNULL, env=env) if prefetch else None
    proc = subprocess.run(
        ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled on",
         "-iex", "set debug-file-directory /nonexistent", "-ex", "bt",
         "-ex", "list bench_f0", "-ex", "info sharedlibrary", str(program), str(core)],
        capture_output=True, text=True, env=env, timeout=1800)
    if hint is not None and hint.wait(timeout=600) != 0:
        raise SystemExit(f"{prefetch} failed")
    return time.perf_counter() - t, proc.stdout + proc.stderr


def sources_session(url: str, sources: list[tuple[str, str]], cache: Path) -> tuple[float, int]:
    env = os.environ | {"DEBUGINFOD_URLS": url, "DEBUGINFOD_CACHE_PATH": str(cache),
                        "DEBUGINFOD_TIMEOUT": "60"}
    ok = 0
    t = time.perf_counter()
    for bid, path in sources:
        got = subprocess.run(["debuginfod-find", "source", bid, path], capture_output=True,
                             env=env, timeout=600)
        ok += got.returncode == 0
    return time.perf_counter() - t, ok


PHASES = ("gdb cold", "gdb warm", "gdb prefetch", "sources cold", "sources warm")


def where_the_time_goes(log: str) -> str:
    """Requests and their summed seconds by kind and status, and the summed steps they waited
    for, from serve's log lines ("GET /buildid/ID/KIND... STATUS 0.012s FILE (lookup 7 ms,
    download 5 ms, read 3 ms, write 1 ms)")."""
    kinds: dict[str, list[float]] = {}
    steps: dict[str, float] = {}
    for m in re.finditer(r"^GET /buildid/\w+/(\w+)\S* (\d+) (\d+\.\d+)s(.*)$", log,
                         re.MULTILINE):
        kinds.setdefault(f"{m.group(1)} {m.group(2)}", []).append(float(m.group(3)))
        for step, ms in re.findall(r"([a-zA-Z ]+?) (\d+) ms", m.group(4)):
            steps[step.strip(" ,(")] = steps.get(step.strip(" ,("), 0.0) + int(ms) / 1000
    return ("; ".join(f"{k}: {len(v)} requests, {sum(v):.2f} s (max {max(v) * 1000:.0f} ms)"
                      for k, v in sorted(kinds.items()))
            + "\n    waiting for: " + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()))


def wait_indexed(url: str, expected: int, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until debuginfod has scanned every rpm (its own /metrics say so)."""
    t = time.perf_counter()
    while True:
        if time.perf_counter() - t > 900:
            raise SystemExit("debuginfod did not finish indexing in 900 s")
        if proc.poll() is not None:
            raise SystemExit("debuginfod exited")
        try:
            text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        except OSError:
            time.sleep(0.2)
            continue
        done = sum(int(float(m)) for m in re.findall(
            r'^scanned_files_total\{source="\.rpm archive"\} (\S+)', text, re.MULTILINE))
        pending = re.search(r'^thread_work_pending\{role="scan"\} (\S+)', text, re.MULTILINE)
        if done >= expected and pending is not None and float(pending.group(1)) == 0:
            return time.perf_counter() - t
        time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--libs", type=int, default=110)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--mirror-ms", type=float, default=0.0,
                    help="delay of the stand-in mirror before each answer (a remote mirror's "
                         "round trips; debuginfod reads the rpms locally whatever this is)")
    args = ap.parse_args()
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
        stack.callback(shutil.rmtree, work, True)
        t0 = time.monotonic()
        program, core, sources = build(work, args.libs)
        nrpms = len(list((work / "rpms").glob("*.rpm")))
        print(f"built {args.libs} libraries, {nrpms} rpms and a core in "
              f"{time.monotonic() - t0:.0f} s")
        procs: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=20)

        stack.callback(stop_all)

        def start(argv: list[str], url: str, env: dict[str, str] | None = None,
                  health: str = "/") -> str:
            procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_http(url + health, procs[-1])
            return url

        port = free_port()
        files = start([PY, "-c", FILE_SERVER, str(port), str(work / "rpms"),
                       str(args.mirror_ms)],
                      f"http://127.0.0.1:{port}")
        env = os.environ | {"DARKSERVER_DATABASE_URL": f"sqlite:///{work}/bench.sqlite3",
                            "DJANGO_SETTINGS_MODULE": "darkserver.settings",
                            "PYTHONPATH": str(ROOT)}
        run([str(BIN / "darkserver"), "migrate", "-v0"], env=env, cwd=ROOT)
        t = time.perf_counter()
        run([PY, "-c", IMPORT, files, str(work / "rpms")], env=env, cwd=ROOT)
        print(f"darkimport: {nrpms} rpms into the Darkserver in {time.perf_counter() - t:.1f} s")
        if args.mirror_ms:
            print(f"the stand-in mirror waits {args.mirror_ms:g} ms before each answer")
        port = free_port()
        server = start([str(BIN / "gunicorn"), "-c", "conf/gunicorn.conf.py", "--workers", "2",
                        "--bind", f"127.0.0.1:{port}", "darkserver.asgi:application"],
                       f"http://127.0.0.1:{port}", env, "/api/v1/health")
        conf = work / "darkclient.conf"
        conf.write_text(f"[darkclient]\ncache_dir = {work}/client\ncheck_timeout = 2\n"
                        "[urls fc]\nmirror =\nmirror_debug =\nkoji =\nkoji_debug =\n"
                        "archive =\narchive_debug =\n")
        client_env = os.environ | {"DARKCLIENT_CONF": str(conf), "NO_PROXY": "127.0.0.1"}
        port = free_port()
        theirs = f"http://127.0.0.1:{port}"
        t = time.perf_counter()
        start(["debuginfod", "-p", str(port), "-d", str(work / "debuginfod.sqlite"),
               "-R", str(work / "rpms"), "-t", "0", "-g", "0"], theirs, health="/metrics")
        print(f"debuginfod: indexed {nrpms} rpms in "
              f"{wait_indexed(theirs, nrpms, procs[-1]) + time.perf_counter() - t:.1f} s")
        serving: list[subprocess.Popen[bytes]] = []
        logs: list[Path] = []

        def fresh_serve() -> str:
            """A new `darkclient serve` with an empty cache (memory and disk): cold."""
            for p in serving:
                p.terminate()
                p.wait(timeout=20)
                procs.remove(p)
            serving.clear()
            n = len(logs)
            logs.append(work / f"serve-{n}.log")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with open(logs[-1], "wb") as log:
                procs.append(subprocess.Popen(
                    [str(BIN / "darkclient"), "serve", "--listen", f"127.0.0.1:{port}",
                     "--server", server, "--cache-dir", str(work / f"serve-cache-{n}")],
                    env=client_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log))
            serving.append(procs[-1])
            wait_http(url + "/", procs[-1])
            return url

        ours = "darkclient serve"
        results: dict[str, dict[str, list[float]]] = {
            label: {k: [] for k in PHASES} for label in (ours, "debuginfod")}
        outputs: dict[str, str] = {}
        cache_n = 0

        def client_cache() -> Path:
            nonlocal cache_n
            cache_n += 1
            return work / f"client-cache-{cache_n}"

        for i in range(args.runs):
            # Alternating order, so that neither side always runs on the busier half of the
            # machine's load; a fresh gdb/debuginfod-client cache for every session.
            for label in (ours, "debuginfod") if i % 2 == 0 else ("debuginfod", ours):
                r = results[label]
                url = fresh_serve() if label == ours else theirs
                for phase in ("gdb cold", "gdb warm"):
                    took, out = gdb_session(url, program, core, client_cache())
                    r[phase].append(took)
                    outputs[label] = out
                # Cold again, with `darkclient prefetch CORE` started beside gdb (debuginfod
                # has no such hint: its figure is a second cold gdb).
                url = fresh_serve() if label == ours else theirs
                hint = [str(BIN / "darkclient"), "prefetch", str(core), "--serve", url]
                took, out = gdb_session(url, program, core, client_cache(),
                                        hint if label == ours else None)
                r["gdb prefetch"].append(took)
                url = fresh_serve() if label == ours else theirs
                for phase in ("sources cold", "sources warm"):
                    took, ok = sources_session(url, sources, client_cache())
                    r[phase].append(took)
                    if ok != len(sources):
                        print(f"{label}: only {ok} of {len(sources)} sources found")
        for p in serving:
            p.terminate()
            p.wait(timeout=20)
        print(f"seconds per session (runs alternate the order; serve / debuginfod), "
              f"{args.libs + 1} modules, {len(sources)} sources:")
        for phase in PHASES:
            pairs = zip(results[ours][phase], results["debuginfod"][phase], strict=True)
            print(f"  {phase:13} " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs)
                  + f"   best {min(results[ours][phase]):.2f}/"
                  f"{min(results['debuginfod'][phase]):.2f}")
        for label, out in outputs.items():
            listed = "return x + 0;" in out
            frames = len(re.findall(r"^#\d+ ", out, re.MULTILINE))
            unread = len(re.findall(r"\(\*\)\s+\S*libbench\d+\.so$", out, re.MULTILINE))
            print(f"{label}: bt {frames} frames, list shows the source: {listed}, "
                  f"bench libraries without debug info after loading: {unread}")
        print("serve's own time per request (its log), by kind, first run's sessions "
              "(gdb cold+warm, gdb with prefetch, sources cold+warm):")
        for log in logs[:3]:
            print("  " + where_the_time_goes(log.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
