"""The `buildid`, `file` and `core` commands: gather build-ids, one batch lookup, URL checks,
downloads and debug files, then the report (exit statuses: darkclient/cli.py)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from darkclient import config as configmod
from darkclient import layout
from darkclient.errors import ClientError
from darkclient.fetch import Job, download_only, pick, run_jobs
from darkclient.lookup import LookupResult, Match, batch_requests, lookup, normalise_buildid
from darkclient.urls import Resolution, Resolver, candidates, make_session
from darkcore import buildid
from darkcore.core import VDSO_NAME, read_core_path
from darkcore.elf import ET_CORE, read_elf_path
from darkcore.errors import PackageError


@dataclass(slots=True)
class Item:
    """One thing asked about: a build-id given, an ELF file, or a module of a core."""

    label: str  # what the user knows it by (the id, a file path, a module path)
    buildid: str | None
    problem: str = ""  # why there is no build-id
    matches: list[Match] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # download / extraction results


class Run:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out, self.err = out, err
        self.items: list[Item] = []
        self.errors = 0
        self.resolver: Resolver | None = None
        self.laid_out: list[str] = []  # --debug-dir: dwz files and sources, one line each

    def error(self, message: str) -> None:
        self.errors += 1
        print(f"darkclient: {message}", file=self.err)

    def warn(self, message: str) -> None:
        print(f"darkclient: warning: {message}", file=self.err)

    # --- input ----------------------------------------------------------------------------

    def gather(self) -> None:
        a = self.args
        if a.command == "buildid":
            for text in a.ids:
                try:
                    bid = normalise_buildid(text)
                except ClientError as exc:
                    self.error(str(exc))
                    continue
                self.items.append(Item(bid, bid))
        elif a.command == "file":
            for path in a.files:
                try:
                    info = read_elf_path(path)
                except OSError as exc:
                    self.error(f"{path}: {exc.strerror or exc}")
                    continue
                except PackageError as exc:
                    self.error(f"{path}: {exc}")
                    continue
                if info is None:
                    self.error(f"{path}: not an ELF file (no \\x7fELF magic)")
                elif info.elf_type == ET_CORE:
                    self.error(f"{path}: is a core dump; use 'darkclient core {path}'")
                elif info.rejected_build_id is not None:
                    rejected = info.rejected_build_id
                    self.items.append(Item(path, None, (
                        f"build-id note of {len(rejected)} bytes ({rejected.hex()[:32]}) "
                        f"breaks the server's rule ({buildid.RULE}); not sent")))
                elif info.build_id is None:
                    self.items.append(Item(path, None, "no GNU build-id note"))
                else:
                    self.items.append(Item(path, info.build_id.hex()))
        elif a.command == "core":
            try:
                core = read_core_path(a.core)
            except OSError as exc:
                raise ClientError(f"{a.core}: {exc.strerror or exc}") from None
            except PackageError as exc:
                raise ClientError(f"{a.core}: {exc}") from None
            for w in core.warnings:
                self.warn(f"{a.core}: {w}")
            for m in core.modules:
                self.items.append(Item(m.name or f"module at {m.start:#x}",
                                       m.build_id_hex or None, m.problem))

    # --- work -----------------------------------------------------------------------------

    def run(self) -> int:
        self.gather()
        ids = list(dict.fromkeys(i.buildid for i in self.items if i.buildid))
        cfg = configmod.load(self.args.server)
        if self.args.dry_run:
            server = cfg.server or "http://darkserver.invalid"
            for req in batch_requests(server, ids):
                print(req.describe(), file=self.out)
            return 2 if self.errors else 0
        if ids:
            server = configmod.require_server(cfg)
            with make_session() as session:
                result = lookup(session, server, ids, self.args.timeout or cfg.timeout)
                self.attach(result)
                if not self.args.no_check:
                    self.resolver = Resolver(cfg, session)
                    self.resolve(self.resolver)
                self.fetch(session, cfg, server)
        self.report()
        if self.errors:
            return 2
        return 1 if any(counted for _, _, counted in self.not_found()) else 0

    def not_found(self) -> list[tuple[Item, str, bool]]:
        """(item, why, counted) of every item not found; ``counted`` when it decides the exit
        status: a module with a build-id that is not the vDSO (the kernel's, in no package)."""
        out = []
        for item in self.items:
            if item.matches:
                continue
            if not item.buildid:
                out.append((item, f"no build-id: {item.problem}", False))
            elif item.label == VDSO_NAME:
                out.append((item, "the kernel's vDSO: in no package", False))
            else:
                out.append((item, "unknown to the server", True))
        return out

    def attach(self, result: LookupResult) -> None:
        for item in self.items:
            if item.buildid:
                item.matches = result.results.get(item.buildid, [])

    def resolve(self, resolver: Resolver) -> None:
        pairs = [(item, m) for item in self.items for m in item.matches]
        resolved = resolver.resolve_many(candidates(m, resolver.cfg) for _, m in pairs)
        for item in self.items:
            item.resolutions = []
        for (item, _), res in zip(pairs, resolved, strict=True):
            item.resolutions.append(res)

    def url_of(self, item: Item, match: Match) -> str | None:
        idx = next(i for i, m in enumerate(item.matches) if m is match)
        if idx < len(item.resolutions):
            return item.resolutions[idx].url
        first = candidates(match, configmod.load(self.args.server))
        return first[0].url if first else None

    def fetch(self, session: Any, cfg: configmod.Config, server: str) -> None:
        a = self.args
        if not a.download and not a.debug_dir:
            return
        timeout = max(a.timeout or cfg.timeout, 30.0)
        symbols = bool(a.debug_dir) or a.debuginfo
        jobs: list[Job] = []
        owners: list[Item] = []
        plain: dict[str, tuple[dict[str, Any], list[Item]]] = {}
        for item in self.items:
            if not item.buildid or not item.matches:
                continue
            match = pick(item.matches, symbols)
            if match is None and symbols and not a.debug_dir:
                match = pick(item.matches, False)
            if match is None:
                item.notes.append("no separate debug file known" if symbols
                                  else "no package file known")
                continue
            url = self.url_of(item, match)
            if url is None:
                item.notes.append(f"{match['package']['nvra']}: no URL answered")
                self.errors += 1
                continue
            if a.debug_dir and match.get("debug"):
                dest = Path(a.debug_dir) / ".build-id" / item.buildid[:2] / (
                    item.buildid[2:] + ".debug")
                jobs.append(Job(item.buildid, match, url, dest))
                owners.append(item)
            else:
                plain.setdefault(url, (match.get("package") or {}, []))[1].append(item)
        keep = Path(a.download) if a.download else None
        installed: list[Path] = []
        for outcome, item in zip(run_jobs(session, jobs, timeout, keep), owners, strict=True):
            if outcome.ok:
                item.notes.append(f"debug file: {outcome.target.dest}")
                installed.append(outcome.target.dest)
            else:
                item.notes.append(f"debug file failed: {outcome.error}")
                self.error(f"{item.label}: {outcome.error}")
        if a.debug_dir and jobs:
            root = Path(a.debug_dir)
            for extras in (
                layout.add_dwz(session, server, cfg, self.resolver, root, installed, keep,
                               timeout),
                layout.add_sources(session, server, cfg, self.resolver, root,
                                   [j.match for j in jobs], keep, timeout),
            ):
                self.laid_out += extras.notes
                for message in extras.errors:
                    self.error(message)
        if keep is not None:
            for url, (package, items) in plain.items():
                got = download_only(session, url, package, keep, timeout)
                for item in items:
                    if got.error:
                        item.notes.append(f"download failed: {got.error}")
                    else:
                        item.notes.append(f"downloaded: {got.saved}")
                if got.error:
                    self.error(got.error)

    # --- output ---------------------------------------------------------------------------

    def match_doc(self, item: Item, i: int) -> dict[str, Any]:
        m = item.matches[i]
        res = item.resolutions[i] if i < len(item.resolutions) else None
        package = m.get("package") or {}
        build = m.get("build") or {}
        return {
            "nvra": package.get("nvra"), "path": m.get("path"), "distro": build.get("distro"),
            "debug": bool(m.get("debug")), "url": res.url if res else None,
            "url_kind": res.kind if res else None,
            "checks": [c.as_dict() for c in res.checks] if res else [],
            "package": package, "build": build,
        }

    def report(self) -> None:
        missing = {id(item): (why, counted) for item, why, counted in self.not_found()}
        hint = layout.gdb_hint(Path(self.args.debug_dir).absolute()) \
            if self.args.debug_dir else None
        if self.args.json:
            docs = []
            for item in self.items:
                why, counted = missing.get(id(item), (None, False))
                docs.append({
                    "source": item.label, "buildid": item.buildid,
                    "found": bool(item.matches), "problem": item.problem or None,
                    "why_not_found": why, "counts_for_status": counted,
                    "matches": [self.match_doc(item, i) for i in range(len(item.matches))],
                    "notes": item.notes,
                })
            doc: dict[str, Any] = {"items": docs, "summary": self.summary()}
            doc["not_found"] = [{"source": item.label, "buildid": item.buildid, "why": why,
                                 "counts_for_status": counted}
                                for item, why, counted in self.not_found()]
            if hint:
                doc["debug_dir"] = {"laid_out": self.laid_out, "gdb": hint}
            json.dump(doc, self.out, indent=2)
            print(file=self.out)
            return
        for item in self.items:
            head = item.buildid or "-" * 8
            print(head if item.label == item.buildid else f"{head}  {item.label}", file=self.out)
            if not item.buildid:
                print(f"    no build-id: {item.problem}", file=self.out)
            elif not item.matches:
                print("    unknown to the server", file=self.out)
            for i in range(len(item.matches)):
                d = self.match_doc(item, i)
                flag = "  [debug]" if d["debug"] else ""
                print(f"    {d['nvra']}  {d['distro']}  {d['path']}{flag}", file=self.out)
                if d["url"]:
                    print(f"        {d['url']}  ({d['url_kind']})", file=self.out)
                elif d["checks"]:
                    tried = "; ".join(f"{c['kind']} {c['error']}" for c in d["checks"])
                    print(f"        no URL answered ({tried})", file=self.out)
                elif not self.args.no_check:
                    why = "" if d["distro"] else (
                        " (the build has no distro tag: an [urls] section without a prefix "
                        "applies to it, see docs/CLIENT.md)")
                    print(f"        no candidate URL{why}", file=self.out)
            for note in item.notes:
                print(f"    {note}", file=self.out)
        for line in self.laid_out:
            print(line, file=self.out)
        s = self.summary()
        print(f"{s['items']} modules/ids: {s['found']} found, {s['unknown']} unknown, "
              f"{s['without_buildid']} without build-id", file=self.out)
        if hint:
            print(f"debug with: {hint}", file=self.out)

    def summary(self) -> dict[str, int]:
        return {
            "items": len(self.items),
            "found": sum(1 for i in self.items if i.matches),
            "unknown": sum(1 for i in self.items if i.buildid and not i.matches),
            "without_buildid": sum(1 for i in self.items if not i.buildid),
            "errors": self.errors,
        }
