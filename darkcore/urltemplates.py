"""Download-URL templates for imported packages: the defaults and the configured ones."""

from __future__ import annotations

from darkcore.settings import DEB_URL_TEMPLATE, RPM_URL_TEMPLATE

DEFAULT_URL_TEMPLATES = {"rpm": RPM_URL_TEMPLATE.default, "deb": DEB_URL_TEMPLATE.default}


def url_templates() -> dict[str, str]:
    return {"rpm": RPM_URL_TEMPLATE.get(), "deb": DEB_URL_TEMPLATE.get()}
