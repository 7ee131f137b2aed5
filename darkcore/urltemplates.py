"""Download-URL templates for imported packages: the defaults and the configured ones."""

from __future__ import annotations

from darkcore import config

DEFAULT_URL_TEMPLATES = {
    "rpm": "https://kojipkgs.fedoraproject.org/packages/{source}/{version}/{release}/{arch}/{filename}",
    "deb": "https://deb.debian.org/debian/pool/main/{source_prefix}/{source}/{filename}",
}


def url_templates() -> dict[str, str]:
    return {
        kind: config.setting(f"{kind}_url_template", default)
        for kind, default in DEFAULT_URL_TEMPLATES.items()
    }
