"""The client's exception hierarchy. Every message is one line a person can act on; the CLI
catches ``ClientError`` at one boundary and prints it without a traceback."""

from __future__ import annotations

import darkcore.errors


class ClientError(Exception):
    """Anything the client reports as a one-line error (exit status 2)."""


class FormatError(ClientError, darkcore.errors.FormatError):
    """A file is not what it should be (not ELF, not a core, corrupt). Also a darkcore
    FormatError: the client's readers raise the shared hierarchy on garbage, like darkcore's."""


class NotElfError(FormatError):
    pass


class NotCoreError(FormatError):
    pass


class TruncatedError(FormatError):
    pass


class ConfigError(ClientError):
    pass


class ServerError(ClientError):
    """The Darkserver service is down, slow, or answered something that is not the API."""


class DownloadError(ClientError):
    """A package could not be fetched or failed verification."""
