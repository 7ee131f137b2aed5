"""The client's own errors. Every message is one line a person can act on; the CLI catches
``ClientError`` (and darkcore's ``PackageError``, which the format readers raise for a file
that is not what it should be) at one boundary and prints it without a traceback."""

from __future__ import annotations


class ClientError(Exception):
    """Anything the client reports as a one-line error (exit status 2)."""


class ConfigError(ClientError):
    pass


class ServerError(ClientError):
    """The Darkserver service is down, slow, or answered something that is not the API."""


class DownloadError(ClientError):
    """A package could not be fetched or failed verification."""
