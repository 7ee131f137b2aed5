"""The one build-id rule, shared by the web service, the ELF reader and the client.

A build-id is hex of even length, 8 to 128 digits (4 to 64 bytes): GNU ld writes 8 (--build-id
=md5 is 16, sha1 20) to 32 bytes, and nothing shorter than 4 bytes identifies anything. Input
is case-insensitive; the canonical form is lower case. The web service answers a malformed id
with a 400 naming it, so the ELF reader never yields, and the client never sends, an id outside
this rule.
"""

from __future__ import annotations

import re

MIN_BYTES, MAX_BYTES = 4, 64
MIN_DIGITS, MAX_DIGITS = 2 * MIN_BYTES, 2 * MAX_BYTES
RULE = f"build-id must be {MIN_DIGITS} to {MAX_DIGITS} hex digits, even length"

_BUILD_ID = re.compile(f"(?:[0-9a-fA-F]{{2}}){{{MIN_BYTES},{MAX_BYTES}}}")


class BadBuildId(ValueError):
    """A malformed build-id; the message echoes it and states the rule."""

    def __init__(self, value: str, rule: str = RULE) -> None:
        super().__init__(f"malformed build-id {value!r}: {rule}")
        self.value = value
        self.rule = rule


def is_build_id(value: str) -> bool:
    """True when ``value`` (any case) follows the rule."""
    return _BUILD_ID.fullmatch(value) is not None


def normalize_build_id(value: str) -> str:
    """The lower-case hex form of ``value``, or :class:`BadBuildId` saying what is wrong."""
    if _BUILD_ID.fullmatch(value) is None:
        raise BadBuildId(value)
    return value.lower()


def valid_length(n_bytes: int) -> bool:
    """Whether a build-id note descriptor of ``n_bytes`` bytes gives an id the API accepts."""
    return MIN_BYTES <= n_bytes <= MAX_BYTES


def from_bytes(raw: bytes) -> str:
    """The canonical text of a note's descriptor; :class:`BadBuildId` when out of bounds."""
    text = raw.hex()
    if not valid_length(len(raw)):
        raise BadBuildId(text)
    return text


# Where a distribution installs a debug file by its build-id (rpm's and Debian's debug
# packages, gdb's search): DEBUG_DIR + link_name(id) + ".debug".
DEBUG_DIR = "/usr/lib/debug/.build-id/"


def link_name(build_id: str) -> str:
    """``xx/rest``: a (hex) build-id's name under a ``.build-id`` directory."""
    return f"{build_id[:2]}/{build_id[2:]}"
