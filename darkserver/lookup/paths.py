"""How an install path is stored: the one rule, used by the importer (store) and the web (queries).

A debug file's ``.build-id`` path names its own build-id: ``/usr/lib/debug/.build-id/ab/cdef...
.debug`` (Debian's -dbgsym packages ship their debug files there; rpm and deb packages link
``/usr/lib/debug/.build-id/ab/cdef...`` to the file). Stored as is, each would be a path text of
its own, used once; stored as a template (the two hex parts replaced by MARK), all of them share
two rows, and the text is rebuilt from the ELF row's own build-id when it is read.

Every other path is stored once per package name (``scope``) for all the builds of that name.
MARK is a NUL, which no real path contains, so a template never collides with a stored path.
"""

from __future__ import annotations

import re

from darkcore.buildid import DEBUG_DIR as BUILD_ID_DIR
from darkcore.buildid import link_name

MARK = "\0"
TEMPLATES = (BUILD_ID_DIR + MARK, BUILD_ID_DIR + MARK + ".debug")
# The scope of the templates: one row each for every package (a name's scope is never empty).
TEMPLATE_SCOPE = b""

_BUILD_ID_PATH = re.compile(r"([0-9a-f]{2})/([0-9a-f]+)(\.debug)?")


def _hex_parts(build_id: bytes) -> str:
    return link_name(build_id.hex())


def stored(path: str, build_id: bytes) -> str:
    """The text stored for ``path`` of an ELF file with ``build_id``: a template when the path is
    that build-id's own ``.build-id`` path, else the path itself."""
    if path.startswith(BUILD_ID_DIR) and len(build_id) > 1:
        rest = path[len(BUILD_ID_DIR):]
        own = _hex_parts(build_id)
        if rest == own:
            return TEMPLATES[0]
        if rest == own + ".debug":
            return TEMPLATES[1]
    return path


def expand(text: str, build_id: bytes) -> str:
    """The path a stored text stands for in the row with ``build_id`` (``stored``'s inverse)."""
    if MARK not in text:
        return text
    return text.replace(MARK, _hex_parts(build_id))


def split(path: str) -> tuple[str, bytes] | None:
    """(template, build-id) when ``path`` could be stored as a template, else None: what a
    lookup by path searches besides the path's own text."""
    if not path.startswith(BUILD_ID_DIR):
        return None
    found = _BUILD_ID_PATH.fullmatch(path, len(BUILD_ID_DIR))
    if found is None or len(found.group(2)) % 2:
        return None
    build_id = bytes.fromhex(found.group(1) + found.group(2))
    return stored(path, build_id), build_id


def scope(package_name: str) -> bytes:
    """The scope of a package's own (not template) paths."""
    return package_name.encode("utf-8", "surrogateescape")


def scope_of(text: str, package_name: str) -> bytes:
    """The scope a stored text is kept under."""
    return TEMPLATE_SCOPE if MARK in text else scope(package_name)
