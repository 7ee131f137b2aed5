"""What a scan is told: ScanOptions, apart from the readers (darkimport.run.scan), so that the
command line and a repository re-run that reads no package do not import them."""

from __future__ import annotations

from dataclasses import dataclass, field

from darkcore.limits import Limits


@dataclass(frozen=True, slots=True)
class ScanOptions:
    # Distro tag for debs (rpms take it from the release, e.g. fc40, el9); None = derive
    # ("deb12" from a "+deb12u1" version) or fall back to "debian".
    deb_distro: str | None = None
    # URL templates by package kind; fields: darkcore.urltemplates.FIELDS.
    url_templates: dict[str, str] = field(default_factory=dict)
    # Resource bounds per package (README "Configuration"); read from the settings once.
    limits: Limits = field(default_factory=Limits.from_settings)
