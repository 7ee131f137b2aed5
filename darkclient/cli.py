"""``darkclient``: build-ids, ELF files or a core dump in; packages, files and URLs out.

Exit status: 0 when every module (or id) that has a build-id and is not the kernel's vDSO was
found; 1 when some such module is unknown to the server (``--json``'s ``not_found`` says which
and why, with the ones that do not count); 2 on errors (bad input, server down or slow, a failed
download). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from darkclient.errors import ClientError

# Each command imports what it needs when it runs: `darkclient prefetch` is started beside
# gdb and must be quick to start (the lookup commands' imports take ~0.4 s).


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="Darkserver base URL (else DARKSERVER_URL, else the "
                        "config file)")
    common.add_argument("--json", action="store_true", help="JSON output for tools")
    common.add_argument("--dry-run", action="store_true",
                        help="print the request that would be sent, send nothing")
    common.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for the server (default 10)")
    common.add_argument("--no-check", action="store_true",
                        help="do not check download URLs with HEAD requests")
    common.add_argument("--download", metavar="DIR",
                        help="download the packages (verified) into DIR")
    common.add_argument("--debuginfo", action="store_true",
                        help="with --download, prefer the debuginfo packages")
    common.add_argument("--debug-dir", metavar="DIR",
                        help="extract debug files into DIR/.build-id/xx/rest.debug")
    p = argparse.ArgumentParser(prog="darkclient", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("buildid", parents=[common], help="look up build-ids")
    b.add_argument("ids", nargs="+", metavar="ID")
    f = sub.add_parser("file", parents=[common], help="look up the build-ids of ELF files")
    f.add_argument("files", nargs="+", metavar="ELF")
    c = sub.add_parser("core", parents=[common],
                       help="look up every module mapped in a core dump")
    c.add_argument("core", metavar="COREFILE")
    s = sub.add_parser("serve", help="local debuginfod-compatible endpoint")
    s.add_argument("--server", help="Darkserver base URL")
    s.add_argument("--listen", default="127.0.0.1:8002", help="HOST:PORT (default %(default)s)")
    s.add_argument("--cache-dir", help="cache directory (default ~/.cache/darkclient/serve)")
    s.add_argument("--cache-size", default="2G",
                   help="most bytes the cache keeps, e.g. 500M, 2G (default %(default)s)")
    s.add_argument("--timeout", type=float, default=None)
    pf = sub.add_parser("prefetch", help="tell a running `darkclient serve` every module of a "
                        "core, before gdb asks for them one by one")
    pf.add_argument("core", metavar="COREFILE")
    pf.add_argument("--serve", required=True, metavar="URL",
                    help="the serve endpoint, e.g. http://127.0.0.1:8002")
    pf.add_argument("--timeout", type=float, default=None)
    return p


def main(argv: list[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    try:
        if args.command == "serve":
            from darkclient.serve import serve_main

            return serve_main(args, err)
        if args.command == "prefetch":
            from darkclient.prefetch import prefetch_main

            return prefetch_main(args, out)
        from darkclient.commands import Run

        return Run(args, out, err).run()
    except ClientError as exc:
        print(f"darkclient: {exc}", file=err)
        return 2
    except KeyboardInterrupt:
        print("darkclient: interrupted", file=err)
        return 2
    except BrokenPipeError:
        return 2


if __name__ == "__main__":
    sys.exit(main())
