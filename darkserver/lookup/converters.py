"""URL path converters: identifiers are normalised before a view sees them.

Each converter matches a broad path segment and validates it itself, so that a malformed value
gets a JSON 400 naming the problem rather than a silent 404 for a route that did not match. A
malformed value is not raised while the URL is resolved: the converter hands the view an
:class:`Invalid` holding the error, and the view decorator (``errors.api``) answers it after the
method check, so a wrong method is a 405 whatever the id. Views receive canonical values and
never re-check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from darkcore import buildid
from darkcore.buildid import MAX_DIGITS, MIN_DIGITS
from darkserver.lookup.errors import ApiError, BadBuildId, Invalid

__all__ = ["MAX_DIGITS", "MIN_DIGITS", "normalize_build_id", "normalize_build_id_list",
           "normalize_prefix"]
MIN_PREFIX_DIGITS = 16  # Breakpad-style tools keep the first 16 bytes; 8 would match too much
T = TypeVar("T")
PREFIX_RULE = f"a build-id prefix must be {MIN_PREFIX_DIGITS} to {MAX_DIGITS} hex digits"

_PREFIX = re.compile(f"[0-9a-fA-F]{{{MIN_PREFIX_DIGITS},{MAX_DIGITS}}}")


def _checked(normalize: Callable[[str], T], value: str) -> T | Invalid:
    try:
        return normalize(value)
    except ApiError as exc:
        return Invalid(exc)


def normalize_build_id(value: str) -> str:
    """The lower-case hex form of a build-id, or ``BadBuildId`` saying what is wrong (the rule
    is darkcore.buildid's, shared with the ELF reader and the client)."""
    if not buildid.is_build_id(value):
        raise BadBuildId(value)
    return value.lower()


def normalize_build_id_list(value: str) -> list[str]:
    """Comma-separated build-ids (the compatibility URL), normalised and de-duplicated."""
    return list(dict.fromkeys(normalize_build_id(part) for part in value.split(",")))


def normalize_prefix(value: str) -> str:
    if _PREFIX.fullmatch(value) is None:
        raise BadBuildId(value, PREFIX_RULE)
    return value.lower()


class BuildIdConverter:
    """``<buildid:...>``: one build-id, as lower-case hex."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str | Invalid:
        return _checked(normalize_build_id, value)

    def to_url(self, value: str) -> str:
        return value


class BuildIdListConverter:
    """``<buildids:...>``: comma-separated build-ids (the compatibility URL), de-duplicated."""

    regex = "[^/]+"

    def to_python(self, value: str) -> list[str] | Invalid:
        return _checked(normalize_build_id_list, value)

    def to_url(self, value: list[str] | str) -> str:
        return value if isinstance(value, str) else ",".join(value)


class PrefixConverter:
    """``<buildidprefix:...>``: the first digits of a build-id (any parity)."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str | Invalid:
        return _checked(normalize_prefix, value)

    def to_url(self, value: str) -> str:
        return value


class NvraConverter:
    """``<nvra:...>``: a package's N-V-R.A (or deb name_version_arch), with or without the
    file suffix; the stored key has none."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str | Invalid:
        return _checked(normalize_nvra, value)

    def to_url(self, value: str) -> str:
        return value


def normalize_nvra(value: str) -> str:
    """A package's N-V-R.A (or deb name_version_arch) without its file suffix."""
    for suffix in (".rpm", ".deb"):
        if value.endswith(suffix):
            value = value[: -len(suffix)]
            break
    if not value:
        raise ApiError("empty package name", nvra=value)
    return value


CONVERTERS = {
    "buildid": BuildIdConverter,
    "buildids": BuildIdListConverter,
    "buildidprefix": PrefixConverter,
    "nvra": NvraConverter,
}
