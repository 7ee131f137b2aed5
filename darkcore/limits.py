"""Resource bounds for reading one package, and the budget that enforces them.

A package is untrusted input: a few hundred KB can decompress to terabytes, hold millions of
tiny members or ELF members that claim gigabytes. Every bound below fails the package with
LimitExceeded (a PackageError) naming the limit and the setting that raises it; nothing is
kept of a package that hit one. The settings are the registry's (``darkcore.settings``,
``SETTINGS`` below: from the environment or the importer INI's ``[settings]``); sizes take
K/M/G/T suffixes (powers of 1024).

The defaults are far above anything a real distribution ships (a kernel debuginfo rpm
unpacks to ~6 GiB with ~10^4 members; texlive's largest ~10^5 members) and far below what
takes a machine down.
"""

from __future__ import annotations

from dataclasses import dataclass

from darkcore import settings
from darkcore.errors import LimitExceeded

GIB = 1 << 30

# Limits field -> its setting (darkcore.settings: name, default, doc, README row).
SETTINGS = {
    "unpacked_bytes": settings.MAX_UNPACKED_BYTES,
    "members": settings.MAX_MEMBERS,
    "spool_member": settings.MAX_SPOOL_MEMBER,
    "spool_package": settings.MAX_SPOOL_PACKAGE,
    "warnings": settings.MAX_WARNINGS,
}


def parse_size(text: str, name: str) -> int:
    """"64G" -> 68719476736; plain digits are bytes (or a count)."""
    try:
        return settings.parse_size(text)
    except ValueError:
        raise settings.ConfigError(f"{name}: {text!r} is not a size (e.g. 100, 64M, 8G)") from None


@dataclass(frozen=True, slots=True)
class Limits:
    unpacked_bytes: int = 64 * GIB
    members: int = 1_000_000
    spool_member: int = 8 * GIB
    spool_package: int = 32 * GIB
    warnings: int = 100

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(**{field: setting.get() for field, setting in SETTINGS.items()})


def setting_of(field: str) -> str:
    return SETTINGS[field].name


class Budget:
    """What one package has used so far; every reader of that package charges the same one."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.unpacked = 0
        self.members = 0
        self.spooled = 0

    def unpack(self, n: int) -> None:
        self.unpacked += n
        if self.unpacked > self.limits.unpacked_bytes:
            raise LimitExceeded(
                f"the package decompresses to more than {self.limits.unpacked_bytes} bytes "
                f"(limit {setting_of('unpacked_bytes')})")

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.members:
            raise LimitExceeded(f"the package has more than {self.limits.members} members "
                                f"(limit {setting_of('members')})")

    def spool(self, size: int, what: str) -> None:
        """Before ``size`` bytes of one member are held (memory or temporary file)."""
        if size > self.limits.spool_member:
            raise LimitExceeded(f"{what}: {size} bytes to hold, more than "
                                f"{self.limits.spool_member} (limit {setting_of('spool_member')})")
        self.spooled += size
        if self.spooled > self.limits.spool_package:
            raise LimitExceeded(
                f"{what}: the package's ELF members add up to more than "
                f"{self.limits.spool_package} bytes (limit {setting_of('spool_package')})")
