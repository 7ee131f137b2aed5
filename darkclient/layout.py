"""What ``--debug-dir DIR`` adds around the debug files: the dwz files they refer to, the
build's sources, and the gdb settings that use them.

- dwz: a debug file whose DWARF was shared out by ``dwz -m`` names the shared file in its
  ``.gnu_debugaltlink`` section (a path and that file's build-id). gdb finds it as
  DIR/.build-id/xx/rest.debug, so it is looked up by its build-id and laid out like any
  debug file.
- sources: Fedora's ``NAME-debugsource`` package holds the files debugedit named in the DWARF
  (/usr/src/debug/NAME-V-R.ARCH/...); they go to DIR/usr/src/debug/..., and one gdb setting,
  ``set substitute-path /usr/src/debug DIR/usr/src/debug``, makes ``list`` find them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import requests

from darkclient import config as configmod
from darkclient.debugdir import build_id_path, extract_tree
from darkclient.download import download_spooled, download_to_dir
from darkclient.errors import ClientError
from darkclient.fetch import Job, pick, run_jobs
from darkclient.lookup import Match, lookup
from darkclient.sources import SOURCE_ROOT, pick_source, source_docs
from darkclient.urls import Resolver, candidates
from darkcore.elf import debug_alt_link
from darkcore.errors import PackageError

MAX_DWZ_ROUNDS = 3  # a dwz file does not refer to another; a bound all the same


@dataclass(slots=True)
class Extras:
    notes: list[str] = field(default_factory=list)  # one line per file or package laid out
    errors: list[str] = field(default_factory=list)


def gdb_hint(root: Path) -> str:
    """The gdb options that add DIR to what the machine has (never replace /usr/lib/debug)."""
    return (f"gdb -iex 'set debug-file-directory /usr/lib/debug:{root}' "
            f"-iex 'set substitute-path {SOURCE_ROOT.rstrip('/')} "
            f"{root}{SOURCE_ROOT.rstrip('/')}' PROGRAM CORE")


def _url(resolver: Resolver | None, match: Match, cfg: configmod.Config) -> str | None:
    if resolver is not None:
        return resolver.resolve_many([candidates(match, cfg)])[0].url
    first = candidates(match, cfg)
    return first[0].url if first else None


def add_dwz(session: requests.Session, server: str, cfg: configmod.Config,
            resolver: Resolver | None, root: Path, debug_files: list[Path],
            keep: Path | None, timeout: float) -> Extras:
    """Lay out the dwz files the given debug files refer to (and that are not there yet)."""
    out = Extras()
    todo = list(debug_files)
    for _ in range(MAX_DWZ_ROUNDS):
        wanted: dict[str, str] = {}  # build-id -> the debug file that refers to it
        for path in todo:
            try:
                with open(path, "rb") as f:
                    link = debug_alt_link(cast(BinaryIO, f))
            except (OSError, PackageError):
                continue
            if link is not None and not build_id_path(root, link[1].hex()).exists():
                wanted.setdefault(link[1].hex(), f"{path.name} ({link[0]})")
        if not wanted:
            break
        result = lookup(session, server, list(wanted), cfg.timeout)
        jobs = []
        for bid, why in wanted.items():
            match = pick(result.results.get(bid, []), True)
            url = _url(resolver, match, cfg) if match else None
            if match is None or url is None:
                out.errors.append(f"dwz file {bid} of {why}: "
                                  + ("unknown to the server" if match is None
                                     else "no download URL answered"))
                continue
            jobs.append(Job(bid, match, url, build_id_path(root, bid)))
        todo = []
        for outcome in run_jobs(session, jobs, timeout, keep):
            if outcome.ok:
                out.notes.append(f"dwz file: {outcome.target.dest}")
                todo.append(outcome.target.dest)
            else:
                out.errors.append(f"dwz file failed: {outcome.error}")
    return out


def add_sources(session: requests.Session, server: str, cfg: configmod.Config,
                resolver: Resolver | None, root: Path, matches: list[Match],
                keep: Path | None, timeout: float) -> Extras:
    """Lay out the sources of the builds of ``matches`` (one request and one package per
    build) under ROOT/usr/src/debug/."""
    out = Extras()
    builds: dict[tuple[Any, ...], Match] = {}
    for m in matches:
        b = m.get("build") or {}
        key = (b.get("instance"), b.get("name"), b.get("version"), b.get("release"),
               (m.get("package") or {}).get("arch"))
        builds.setdefault(key, m)
    for match in builds.values():
        bid = str(match.get("buildid") or "")
        arch = str((match.get("package") or {}).get("arch") or "")
        try:
            doc = pick_source(source_docs(session, server, bid, cfg.timeout), arch)
        except ClientError as exc:
            out.errors.append(f"sources of {bid}: {exc}")
            continue
        if doc is None:
            continue  # Debian builds and builds without -debugsource: nothing to lay out
        package = doc["package"]
        url = _url(resolver, doc, cfg)
        if url is None:
            out.errors.append(f"{package.get('nvra')}: no download URL answered")
            continue
        try:
            with contextlib.ExitStack() as stack:
                stream: IO[bytes]
                if keep is not None:
                    saved = download_to_dir(session, url, package, keep, timeout)
                    stream = stack.enter_context(open(saved, "rb"))
                else:
                    stream = stack.enter_context(download_spooled(session, url, package,
                                                                  timeout))
                files = extract_tree(cast(BinaryIO, stream), SOURCE_ROOT,
                                     lambda p: root / p.lstrip("/"))
        except (ClientError, PackageError, OSError) as exc:
            out.errors.append(f"{package.get('nvra')}: {exc}")
            continue
        out.notes.append(f"sources: {len(files)} files from {package.get('nvra')} "
                         f"under {root / SOURCE_ROOT.strip('/')}")
    return out
