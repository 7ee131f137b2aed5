"""``darkclient prefetch CORE --serve URL``: tell a running ``darkclient serve`` every module
of a core before the debugger asks for them one at a time.

Only the build-ids are sent (POST URL/prefetch), the same as the one request to the
Darkserver. It returns at once; serve looks them up in one batch and fetches their debug
files side by side while gdb starts, so run it just before (or beside) gdb.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import TextIO

from darkclient.errors import ClientError
from darkcore.core import read_core_path
from darkcore.errors import PackageError


def core_build_ids(path: str) -> list[str]:
    """The build-ids of a core's modules, in the order the core maps them (gdb's order)."""
    try:
        core = read_core_path(path)
    except OSError as exc:
        raise ClientError(f"{path}: {exc.strerror or exc}") from None
    except PackageError as exc:
        raise ClientError(f"{path}: {exc}") from None
    return list(dict.fromkeys(m.build_id_hex for m in core.modules if m.build_id_hex))


def prefetch_main(args: argparse.Namespace, out: TextIO) -> int:
    ids = core_build_ids(args.core)
    url = args.serve.rstrip("/") + "/prefetch"
    # urllib, not requests: this runs beside gdb, and importing requests costs ~0.3 s.
    req = urllib.request.Request(url, data=json.dumps({"buildids": ids}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "darkclient/1"})
    try:
        with urllib.request.urlopen(req, timeout=args.timeout or 10.0) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        raise ClientError(f"darkclient serve at {url} answered HTTP {exc.code}: "
                          f"{exc.read().decode(errors='replace').strip()[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"cannot reach darkclient serve at {url}: {reason}") from None
    if status != 202:
        raise ClientError(f"darkclient serve at {url} answered HTTP {status}")
    print(f"{args.serve}: prefetching the debug files of {len(ids)} modules", file=out)
    return 0
