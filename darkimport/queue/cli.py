"""``darkserver-import enqueue|worker|backfill``: the queue commands, registered into the main
CLI by ``register``.

    darkserver-import enqueue [--instance NAME] BUILD...
    darkserver-import enqueue --spool DIR [--instance NAME]
    darkserver-import worker [--concurrency N] [--header-first | --verify]
    darkserver-import backfill [--instance NAME] (--tag TAG | --since DATE) [--state-file F]

Queue settings (all commands): --amqp-url, --queue, or DARKSERVER_AMQP_URL, DARKSERVER_QUEUE.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from darkimport.koji.conf import KojiConfigError, get_instance
from darkimport.queue.messages import BuildRequest, QueueConfig


def register(subparsers: Any) -> None:
    enqueue = subparsers.add_parser(
        "enqueue", help="queue Koji builds for the workers, or send a hub plugin's spool")
    _queue_arguments(enqueue)
    enqueue.add_argument("--instance", help="Koji instance (default: the only one configured, "
                         "else primary; with --spool: for builds spooled without one)")
    enqueue.add_argument("--spool", type=Path, metavar="DIR",
                         help="send the builds the Koji hub plugin spooled in DIR (its 'spool', "
                         "by default KojiDir/darkserver-spool) and remove them")
    enqueue.add_argument("builds", nargs="*", metavar="BUILD", help="Koji build id or N-V-R")
    enqueue.set_defaults(handler=run_enqueue)

    worker = subparsers.add_parser("worker", help="import queued builds")
    _queue_arguments(worker)
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="worker processes (default 1)")
    how = worker.add_mutually_exclusive_group()
    how.add_argument("--header-first", dest="mode", action="store_const", const="header",
                     default="payload", help="rows from Koji's rpm headers where they suffice")
    how.add_argument("--verify", dest="mode", action="store_const", const="verify",
                     help="header-first and payload scan, differences reported")
    worker.add_argument("--max-attempts", type=int, help="tries before the dead-letter queue")
    worker.add_argument("--retry-delay", type=float, metavar="SECONDS",
                        help="wait between tries (applies when the queues are first declared)")
    worker.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after this long without work (default: run until stopped)")
    worker.add_argument("--max-messages", type=int, metavar="N", help="exit after N builds")
    worker.add_argument("--stop-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="on SIGTERM/SIGINT, time the build in hand gets to finish before "
                        "the worker leaves it unacknowledged for redelivery (default 30)")
    worker.add_argument("--status-interval", type=float, default=60.0, metavar="SECONDS",
                        help="log the queues' depth and the builds' queue lag this often "
                        "(default 60; 0: never)")
    worker.add_argument("-v", "--verbose", action="store_true", help="log every build")
    worker.set_defaults(handler=run_worker)

    backfill = subparsers.add_parser(
        "backfill", help="queue every COMPLETE build of a tag or since a date not yet imported")
    _queue_arguments(backfill)
    backfill.add_argument("--instance", help="Koji instance (default: the only one "
                          "configured, else primary)")
    which = backfill.add_mutually_exclusive_group(required=True)
    which.add_argument("--tag", help="builds tagged into TAG")
    which.add_argument("--since", help="builds completed after DATE (2024-01-31[T12:00])")
    backfill.add_argument("--state-file", type=Path,
                          help="resume state (default: in the data directory, per arguments)")
    backfill.add_argument("--dry-run", action="store_true", help="count, queue nothing")
    backfill.set_defaults(handler=run_backfill)


def _queue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amqp-url", help="broker URL (default: DARKSERVER_AMQP_URL or "
                        "amqp://guest:guest@127.0.0.1:5672/%%2F)")
    parser.add_argument("--queue", help="work queue name (default: darkserver.builds)")


def _config(args: argparse.Namespace, **extra: Any) -> QueueConfig:
    return QueueConfig.from_settings(url=args.amqp_url, queue=args.queue, **extra)


def _build_ref(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def run_enqueue(args: argparse.Namespace) -> int:
    from darkimport.queue.messages import enqueue

    if not args.builds and args.spool is None:
        print("darkserver-import enqueue: give BUILD... or --spool DIR", file=sys.stderr)
        return 2
    if args.spool is not None:
        status = _send_spool(args)
        if status or not args.builds:
            return status
    try:
        instance = args.instance or get_instance().name
    except KojiConfigError as exc:
        print(f"darkserver-import enqueue: {exc}", file=sys.stderr)
        return 2
    requests = [BuildRequest(instance, _build_ref(b), "cli") for b in args.builds]
    try:
        count = enqueue(requests, _config(args))
    except Exception as exc:  # pika's connection errors have no common useful base
        print(f"darkserver-import enqueue: cannot queue: {describe_error(exc)}",
              file=sys.stderr)
        return 1
    print(f"queued {count} build(s) of instance {instance} on {_config(args).queue}")
    return 0


def _send_spool(args: argparse.Namespace) -> int:
    from darkimport.queue.spool import SpoolError, flush_spool

    cfg = _config(args)
    try:
        result = flush_spool(args.spool, cfg, args.instance)
    except SpoolError as exc:
        print(f"darkserver-import enqueue: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the broker: what was sent before the failure is removed
        print(f"darkserver-import enqueue: cannot queue: {describe_error(exc)}",
              file=sys.stderr)
        return 1
    for problem in result.problems:
        print(f"left in the spool: {problem}", file=sys.stderr)
    builds = " ".join(f"{r.instance}:{r.build}" for r in result.sent)
    print(f"queued {len(result.sent)} spooled build(s) from {args.spool} on {cfg.queue}"
          + (f": {builds}" if builds else ""))
    return 1 if result.problems else 0


def describe_error(exc: Exception) -> str:
    """``Type: message`` of the innermost cause: pika wraps the socket's error in one or two
    of its own, whose message is empty."""
    inner: BaseException = exc
    while True:
        cause = getattr(inner, "exception", None)  # pika's connector errors keep it here
        if cause is None and len(inner.args) == 1:
            cause = inner.args[0]
        if not isinstance(cause, BaseException):
            break
        inner = cause
    detail = str(inner) or "; ".join(str(a) for a in inner.args if str(a)) or repr(inner)
    return f"{type(inner).__name__}: {detail}"


def run_worker(args: argparse.Namespace) -> int:
    from darkimport.queue.worker import run_workers

    extra: dict[str, Any] = {}
    if args.max_attempts is not None:
        extra["max_attempts"] = max(1, args.max_attempts)
    if args.retry_delay is not None:
        extra["retry_delay_ms"] = int(args.retry_delay * 1000)
    from darkimport import djangosetup

    djangosetup.setup()
    # After Django, whose LOGGING would otherwise reset the levels.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    logger = logging.getLogger("darkimport")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger.propagate = False
    logging.getLogger("darkimport.queue.status").setLevel(logging.INFO)
    from darkimport.run.store import close_connections, ensure_schema

    ensure_schema()
    close_connections()  # forked workers open their own
    return run_workers(_config(args, **extra), max(1, args.concurrency), args.mode,
                       idle_exit=args.idle_exit, max_messages=args.max_messages,
                       stop_timeout=max(0.0, args.stop_timeout),
                       status_interval=args.status_interval or None)


def run_backfill(args: argparse.Namespace) -> int:
    from darkimport.koji.backfill import (
        default_state_path,
        describe,
        parse_since,
        run_backfill,
        state_key,
    )
    from darkimport.koji.conf import get_instance
    from darkimport.koji.source import KojiSource

    try:
        instance = get_instance(args.instance)
        since = parse_since(args.since) if args.since else None
    except (KojiConfigError, ValueError) as exc:
        print(f"darkserver-import backfill: {exc}", file=sys.stderr)
        return 2
    state_path = args.state_file or default_state_path(state_key(instance.name, args.tag, since))
    from darkimport import djangosetup

    djangosetup.setup()
    from darkimport.run.store import ensure_schema

    ensure_schema()  # "not imported yet" is asked of the database
    source = KojiSource(instance)
    try:
        state = run_backfill(source, _config(args), state_path, tag=args.tag, since=since,
                             dry_run=args.dry_run)
    except ValueError as exc:
        print(f"darkserver-import backfill: {exc}", file=sys.stderr)
        return 2
    finally:
        source.close()
    print(json.dumps(describe(state) | {"state_file": str(state_path)}))
    return 0
