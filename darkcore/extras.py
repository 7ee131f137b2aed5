"""Installs by role: is the extra a console script needs installed?

``pip install darkserver`` is the client and the core; ``[server]`` and ``[import]`` add the
web service and the importer (pyproject.toml). A command of a missing extra would otherwise die
on an ImportError deep inside Django; it says instead, in one line, what to install, and exits 2.
The extra's requirement list is read from the installed package's metadata, so pyproject.toml
stays the one place that says what an extra holds.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

DISTRIBUTION = "darkserver"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed ([] when Darkserver itself is not
    installed, e.g. run from a source tree: then nothing can be told)."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    gone = []
    for requirement in requirements:
        marker = _EXTRA.search(requirement)
        name = _NAME.match(requirement)
        if marker is None or marker.group(1) != extra or name is None:
            continue
        try:
            metadata.distribution(name.group(0))
        except metadata.PackageNotFoundError:
            gone.append(name.group(0))
    return gone


def require(extra: str, prog: str) -> None:
    """Exit 2 with a one-line message when ``extra`` is not installed."""
    gone = missing(extra)
    if gone:
        print(f"{prog}: this command needs the [{extra}] extra (missing: {', '.join(gone)}); "
              f"install it with: pip install 'darkserver[{extra}]'", file=sys.stderr)
        raise SystemExit(2)
