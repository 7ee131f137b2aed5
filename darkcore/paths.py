"""Archive member names -> the absolute install paths we store, or a rejection.

Member names come from the package and are not trusted: "./usr/bin/x", "usr//lib/./y" and
"/usr/bin/z" all mean an absolute path under the install root, while "../../etc/x", or a name
with a NUL byte, means something is wrong with the package. Such an entry is not stored; the
scan records a warning naming it (``str(PathRejected)``). Nothing is ever resolved against a
real file system.
"""

from __future__ import annotations

MAX_PATH = 4096  # PATH_MAX


class PathRejected(ValueError):
    """A member name that is not stored; the message is the warning to report."""


def normalize_member_path(name: str | bytes) -> str:
    """The absolute, normalised form of an archive member name.

    Strips "./", collapses "//" and "." components; raises PathRejected for "..", NUL bytes,
    an empty name and absurdly long names. Undecodable bytes become backslash escapes (a
    readable, storable stand-in, as ``ls -b`` would print them).
    """
    text = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else _storable(name)
    if "\0" in text:
        raise PathRejected(f"rejected hostile path {text!r} (NUL byte)")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRejected(f"rejected hostile path {text!r} ('..' component)")
    if not parts:
        raise PathRejected(f"rejected path {text!r} (no file name)")
    path = "/" + "/".join(parts)
    if len(path) > MAX_PATH:
        raise PathRejected(f"rejected path {text[:64]!r}... ({len(path)} characters)")
    return path


def _storable(text: str) -> str:
    """Undo surrogate escapes (tarfile's way of keeping undecodable bytes) as backslashes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape") if _escapes_only(text) else None
        if raw is not None:
            return raw.decode("utf-8", "backslashreplace")
        return text.encode("utf-8", "backslashreplace").decode("ascii")


def _escapes_only(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)
