"""Client benchmark: a real core with >= 100 mapped modules resolved end to end.

Builds N shared libraries with gcc (distinct build-ids), a program linked against all of them
that aborts, and its core (gdb generate-core-file). The real Darkserver (gunicorn, SQLite) knows
every module's build-id in a main and a -debuginfo package; plain `python -m http.server`
processes stand in for the mirror (holding half of the main packages) and Koji (everything).
Then times `darkclient core CORE --json`: read the core, one batch lookup, HEAD checks of every
package (mirror tier, then Koji for the rest). Target: <= 1 s.

    .venv/bin/python bench/bench_client.py [--libs 120] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, redirect_stderr
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.args}") from None
            time.sleep(0.05)
    raise SystemExit(f"server did not come up: {url}")


def build_program(work: Path, libs: int) -> tuple[Path, list[tuple[str, str]]]:
    """N libraries + a program linked against all of them; (core, [(lib name, build-id)])."""
    src = work / "src"
    src.mkdir()

    def one(i: int) -> None:
        (src / f"l{i}.c").write_text(f"int bench_f{i}(int x) {{ return x + {i}; }}\n")
        subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-Wl,--build-id", "-o",
                        f"libbench{i}.so", f"l{i}.c"], cwd=src, check=True)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(one, range(libs)))
    calls = "".join(f"int bench_f{i}(int);\n" for i in range(libs))
    body = "".join(f"  s += bench_f{i}(s);\n" for i in range(libs))
    (src / "main.c").write_text(
        f"#include <stdlib.h>\n{calls}int main(void) {{\n  int s = 0;\n{body}"
        "  if (s) abort();\n  return 0;\n}\n")
    subprocess.run(["gcc", "-O1", "-Wl,--build-id", "-o", "benchmain", "main.c", "-L.",
                    *[f"-lbench{i}" for i in range(libs)], f"-Wl,-rpath,{src}",
                    "-Wl,--no-as-needed"], cwd=src, check=True)
    core = work / "bench.core"
    subprocess.run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                    "-ex", "run", "-ex", f"generate-core-file {core}", str(src / "benchmain")],
                   cwd=src, capture_output=True, check=True, timeout=300)
    sys.path.insert(0, str(ROOT))
    from darkcore.elf import read_elf_path

    modules = []
    for p in [src / "benchmain", *sorted(src.glob("libbench*.so"))]:
        bid = read_elf_path(p).build_id
        assert bid is not None
        modules.append((p.name, bid.hex()))
    return core, modules


# http.server as a mirror stand-in, with the three settings any real web server has: HTTP/1.1
# keep-alive, TCP_NODELAY (else a reused connection's reply waits for the client's delayed ACK:
# 40 ms per GET), and a listen backlog larger than 5 (the stdlib default, which drops SYNs
# under 16 concurrent clients and costs 1 s retransmits). An optional third argument: a delay
# in milliseconds before each answer, the round trips to a remote mirror.
FILE_SERVER = r"""
import functools, http.server, sys, time
DELAY = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def send_head(self):
        time.sleep(DELAY)
        return super().send_head()
    def log_message(self, *a): pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True
Server(("127.0.0.1", int(sys.argv[1])),
       functools.partial(Handler, directory=sys.argv[2])).serve_forever()
"""

SEED = r"""
import json, sys
import django
django.setup()
from darkserver.lookup.models import Build, Package, ElfFile, Path
spec = json.load(open(sys.argv[1]))
for m in spec:
    b = Build.objects.create(instance="primary", name=m["name"], version="1.0",
                             release="1.fc40", distro="fc40", koji_build_id=m["n"])
    for suffix, path, debug in (("", m["path"], False), ("-debuginfo", m["debug_path"], True)):
        name = m["name"] + suffix
        nvra = f"{name}-1.0-1.fc40.x86_64"
        p = Package.objects.create(build=b, kind="rpm", nvra=nvra, name=name, version="1.0",
            release="1.fc40", arch="x86_64", filename=nvra + ".rpm", size=m["size"],
            sha256=m["sha256"], url=m["koji"] + f"/packages/{m['name']}/1.0/1.fc40/x86_64/"
            + nvra + ".rpm")
        bid = bytes.fromhex(m["buildid"])
        ElfFile.objects.create(package=p, build_id=bid, path=Path.of(path, bid, name),
            elf_type=3, machine=62, debug=debug)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--libs", type=int, default=120)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="bench-client-"))
        stack.callback(shutil.rmtree, work, True)
        t0 = time.monotonic()
        core, modules = build_program(work, args.libs)
        print(f"built {len(modules)} ELF files and a core in {time.monotonic() - t0:.1f} s")

        procs: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=10)

        stack.callback(stop_all)

        def http_server(root: Path) -> str:
            port = free_port()
            procs.append(subprocess.Popen(
                [PY, "-c", FILE_SERVER, str(port), str(root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/", procs[-1])
            return url

        payload = b"not really an rpm, but the bytes the server's size and sha256 describe\n"
        mirror_root, koji_root = work / "mirror", work / "koji"
        koji = http_server(koji_root)
        mirror = http_server(mirror_root)
        spec = []
        for n, (name, bid) in enumerate(modules):
            pkg = name.removesuffix(".so")
            spec.append({"n": n, "name": pkg, "buildid": bid, "path": f"/usr/lib64/{name}",
                         "debug_path": f"/usr/lib/debug/usr/lib64/{name}-1.0-1.fc40.x86_64.debug",
                         "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                         "koji": koji})
            for sub in ("", "-debuginfo"):
                nvra = f"{pkg}{sub}-1.0-1.fc40.x86_64.rpm"
                d = koji_root / "packages" / pkg / "1.0" / "1.fc40" / "x86_64"
                d.mkdir(parents=True, exist_ok=True)
                (d / nvra).write_bytes(payload)
                if n % 2 == 0 and not sub:  # the mirror holds half of the main packages
                    m = mirror_root / "Packages" / nvra[0]
                    m.mkdir(parents=True, exist_ok=True)
                    (m / nvra).write_bytes(payload)
        (work / "spec.json").write_text(json.dumps(spec))

        env = os.environ | {"DARKSERVER_DATABASE_URL": f"sqlite:///{work}/bench.sqlite3",
                            "DJANGO_SETTINGS_MODULE": "darkserver.settings",
                            "PYTHONPATH": str(ROOT)}
        subprocess.run([str(BIN / "darkserver"), "migrate", "-v0"], env=env, check=True, cwd=ROOT)
        subprocess.run([PY, "-c", SEED, str(work / "spec.json")], env=env, check=True, cwd=ROOT)
        port = free_port()
        procs.append(subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "conf/gunicorn.conf.py", "--workers", "2",
             "--bind", f"127.0.0.1:{port}", "darkserver.asgi:application"],
            env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        server = f"http://127.0.0.1:{port}"
        wait_http(server + "/api/v1/health", procs[-1])

        conf = work / "darkclient.conf"
        conf.write_text(
            f"[darkclient]\ncache_dir = {work}/cache\ncheck_timeout = 2\n"
            f"[urls fc]\nmirror = {mirror}/Packages/{{first}}/{{filename}}\n"
            "mirror_debug =\nkoji =\nkoji_debug =\narchive =\narchive_debug =\n")
        os.environ["DARKCLIENT_CONF"] = str(conf)
        os.environ.pop("DARKSERVER_URL", None)
        os.environ["NO_PROXY"] = "127.0.0.1"
        from darkclient.cli import main as client_main

        argv = ["core", str(core), "--server", server, "--json"]
        times, doc = [], {}
        for _ in range(args.runs):
            out = io.StringIO()
            t = time.perf_counter()
            with redirect_stderr(io.StringIO()):
                code = client_main(argv, out)
            times.append(time.perf_counter() - t)
            doc = json.loads(out.getvalue())
        items = doc["items"]
        mine = [i for i in items if Path(i["source"]).name in dict(modules)]
        resolved = sum(1 for i in mine for m in i["matches"] if m["url"])
        heads = sum(len(m["checks"]) for i in items for m in i["matches"])
        assert len(mine) == len(modules), (len(mine), len(modules))
        assert all(i["found"] for i in mine) and resolved == 2 * len(modules), resolved
        kinds = [m["url_kind"] for i in mine for m in i["matches"]]
        print(f"core: {len(items)} modules mapped ({len(mine)} known to the server, "
              f"{len(items) - len(mine)} system libraries unknown); exit status {code}")
        print(f"resolved {resolved} packages: {kinds.count('mirror')} from the mirror, "
              f"{kinds.count('koji')} from Koji; {heads} HEAD checks")
        print(f"in-process `darkclient core`: median {statistics.median(times):.3f} s, "
              f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs")
        sub = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([PY, "-m", "darkclient", *argv], capture_output=True, cwd=ROOT)
            sub.append(time.perf_counter() - t)
        print(f"`python -m darkclient core` (with interpreter start): median "
              f"{statistics.median(sub):.3f} s")
        target = statistics.median(times) <= 1.0
        print(f"target <= 1 s: {'met' if target else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
