"""Shared bits of the benchmark scripts: corpus download, process-tree memory, timing."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def corpus_debs(directory: Path = CORPUS / "deb") -> list[Path]:
    """Download the Debian packages named in corpus-debs.txt (once) and list them."""
    directory.mkdir(parents=True, exist_ok=True)
    have = sorted(directory.glob("*.deb"))
    if len(have) >= 40:
        return have
    names = []
    for line in (HERE / "corpus-debs.txt").read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name == "linux-image-amd64":
            deps = subprocess.run(["apt-cache", "depends", name], capture_output=True,
                                  text=True).stdout
            name = next(x.split(":", 1)[1].strip() for x in deps.splitlines()
                        if "Depends: linux-image-" in x)
        if name:
            names.append(name)
    subprocess.run(["apt-get", "download", *names], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL)
    return sorted(directory.glob("*.deb"))


def tree_rss(pid: int) -> int:
    """Proportional resident bytes (PSS) of a process and all its descendants: forked workers
    share the parent's pages copy-on-write, and a plain RSS sum would count those twice."""
    total = 0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total


class PeakSampler:
    """Samples a process tree's PSS every 50 ms; ``peak`` is the largest sum seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak
