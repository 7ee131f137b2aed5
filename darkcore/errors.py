"""The importer's error hierarchy. Parsers raise these; the package boundary (scan) turns any
of them into one per-package failure message with the file name and the reason."""

from __future__ import annotations


class PackageError(Exception):
    """Base: something about one package (or one member of it) cannot be read."""


class FormatError(PackageError):
    """The bytes do not follow the format (bad magic, bad header, impossible field)."""


class TruncatedError(FormatError):
    """The stream ended before the format said it would."""


class DecompressionError(PackageError):
    """The payload's compressed stream is corrupt or uses an unsupported compressor."""


class UnsupportedPackage(PackageError):
    """A package this importer deliberately skips (source rpm, unknown format)."""


class IntegrityError(FormatError):
    """A digest the package carries does not match its bytes: the package is damaged."""


class LimitExceeded(PackageError):
    """The package needs more of a bounded resource than allowed (darkcore.limits)."""
