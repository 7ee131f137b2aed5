"""``darkserver-import koji [--instance NAME | --hub URL --topurl URL] BUILD...``

BUILD is a Koji build id or an N-V-R. Registered into the main CLI by ``register``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from darkimport.koji.conf import KojiConfigError, KojiInstance, get_instance, instance_for_hub


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "koji",
        help="import Koji builds",
        description="Import Koji builds: ask the hub for each build's rpms, download and "
        "verify each against Koji's payloadhash (SIGMD5), store their build-ids.",
    )
    add_instance_arguments(parser)
    parser.add_argument(
        "--sigkey", action="append", default=None, metavar="KEY",
        help="prefer the copy signed by KEY (repeatable; default: the instance's sigkeys)",
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--header-first", dest="mode", action="store_const", const="header", default="payload",
        help="take build-ids from Koji's copy of each rpm header (getRPMHeaders) without "
        "downloading; rpms whose header cannot say are downloaded and scanned",
    )
    how.add_argument(
        "--verify", dest="mode", action="store_const", const="verify",
        help="header-first and payload scan both; store the payload scan, report differences",
    )
    parser.add_argument("--retries", type=int, default=5, help="tries per download (default 5)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="only failures and summary")
    parser.add_argument("builds", nargs="+", metavar="BUILD", help="Koji build id or N-V-R")
    parser.set_defaults(handler=run)


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance", help="Koji instance from koji-instances.conf (default: "
                        "the only one configured, else primary); with --hub, the name the "
                        "rows are stored under")
    parser.add_argument("--hub", help="hub URL (with --topurl: an instance not in the config)")
    parser.add_argument("--topurl", help="package tree URL, e.g. https://kojipkgs.example.org")
    parser.add_argument("--serverca", help="with --hub: CA bundle for an HTTPS hub and tree")


def instance_from_args(args: argparse.Namespace) -> KojiInstance:
    if args.hub or args.topurl:
        if not (args.hub and args.topurl):
            raise KojiConfigError("--hub and --topurl go together")
        known = instance_for_hub(args.hub)
        if known is None:
            if not args.instance:
                raise KojiConfigError(
                    f"--hub {args.hub} is not in the Koji instances configuration: name it "
                    "with --instance NAME (the name its builds are stored under)")
            known = KojiInstance(args.instance, args.hub.rstrip("/"), args.topurl)
        return dataclasses.replace(known, name=args.instance or known.name,
                                   topurl=args.topurl.rstrip("/"),
                                   serverca=args.serverca or known.serverca)
    if args.serverca:
        raise KojiConfigError("--serverca goes with --hub (or set serverca in the config)")
    return get_instance(args.instance)


def run(args: argparse.Namespace) -> int:
    from darkcore.urltemplates import url_templates
    from darkimport.koji.buildimport import default_store, import_build
    from darkimport.koji.source import KojiSource, RetryPolicy
    from darkimport.run.scan import ScanOptions

    try:
        instance = instance_from_args(args)
    except KojiConfigError as exc:
        print(f"darkserver-import koji: {exc}", file=sys.stderr)
        return 2
    if args.sigkey is not None:
        instance = dataclasses.replace(instance, sigkeys=tuple(k.lower() for k in args.sigkey))
    store, exists = default_store()
    from darkimport.run.store import ensure_schema

    ensure_schema()
    source = KojiSource(instance, RetryPolicy(attempts=max(1, args.retries)))
    options = ScanOptions(url_templates=url_templates())
    started = time.monotonic()
    report: list[dict[str, Any]] = []
    totals = {"builds": 0, "skipped": 0, "rpms": 0, "present": 0, "rows": 0, "failed": 0}
    try:
        for ref in args.builds:
            outcome = import_build(source, ref, options, mode=args.mode, store=store,
                                   exists=exists)
            totals["builds"] += 1
            if outcome.skipped:
                totals["skipped"] += 1
                if not args.json:
                    print(f"skipped {ref}: {outcome.skipped}", file=sys.stderr)
            if outcome.error:
                totals["failed"] += 1
                if not args.json:
                    print(f"FAILED {ref}: {outcome.error}", file=sys.stderr)
            for rpm in outcome.rpms:
                if rpm.status == "imported":
                    totals["rpms"] += 1
                    totals["rows"] += rpm.rows
                elif rpm.status == "present":
                    totals["present"] += 1
                elif rpm.status == "failed":
                    totals["failed"] += 1
                if args.json:
                    continue
                if rpm.status == "failed":
                    print(f"FAILED {rpm.nvra}: {rpm.reason}", file=sys.stderr)
                elif not args.quiet:
                    print(f"{rpm.status:8} {rpm.nvra} ({rpm.method or '-'}, {rpm.rows} rows)")
                    for warning in rpm.warnings:
                        print(f"warning: {warning}", file=sys.stderr)
            report.append({
                "build": ref, "nvr": outcome.nvr, "koji_build_id": outcome.build_id,
                "skipped": outcome.skipped, "error": outcome.error,
                "rpms": [{"nvra": r.nvra, "status": r.status, "method": r.method,
                          "rows": r.rows, "url": r.url, "reason": r.reason,
                          "warnings": r.warnings} for r in outcome.rpms],
            })
    finally:
        source.close()
    seconds = time.monotonic() - started
    if args.json:
        print(json.dumps({"instance": instance.name, **totals, "seconds": round(seconds, 3),
                          "results": report}, indent=2))
    else:
        print(f"builds: {totals['builds']} ({totals['skipped']} skipped); rpms: "
              f"{totals['rpms']} imported, {totals['present']} already present; rows: "
              f"{totals['rows']}; failed: {totals['failed']}; seconds: {seconds:.2f}")
    return 1 if totals["failed"] else 0
