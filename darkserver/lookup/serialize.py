"""Database rows (plain dicts from ``queries``) to the JSON documents of docs/API.md.

Plain dicts in, plain dicts out: no model instances on the lookup path. A response builds each
package's ``package``/``build``/``urls`` objects once, however many ELF rows share them.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from darkcore import urltemplates
from darkcore.elf import elf_type_name, machine_name
from darkcore.settings import URL_TEMPLATES

Row = dict[str, Any]
Parts = tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]

# --- candidate download URLs -------------------------------------------------------------------

# A template is {"kind": "mirror"|"archive"|..., "distro": "<dist-tag prefix, '' = any>",
# "template": "https://.../{filename}"}; its fields are darkcore.urltemplates.FIELDS.


@functools.lru_cache(maxsize=8)
def _parse_templates(raw: str) -> tuple[tuple[str, str, str], ...]:
    try:
        items = json.loads(raw or "[]")
        parsed = tuple(
            (str(i["kind"]), str(i.get("distro", "")), str(i["template"])) for i in items
        )
        for _kind, _distro, template in parsed:
            urltemplates.check(template)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ImproperlyConfigured(
            "DARKSERVER_URL_TEMPLATES must be a JSON list of "
            '{"kind", "distro", "template"} objects whose placeholders are among '
            f"{list(urltemplates.FIELDS)}: {exc!r}"
        ) from exc
    return parsed


def url_templates() -> tuple[tuple[str, str, str], ...]:
    raw = getattr(settings, "DARKSERVER_URL_TEMPLATES", None)
    if raw is None:
        raw = URL_TEMPLATES.get()  # the environment or url_templates in the INI's [settings]
    elif not isinstance(raw, str):
        raw = json.dumps(raw)
    return _parse_templates(raw)


def _url_context(row: Row) -> dict[str, str]:
    return urltemplates.fields(urltemplates.Package(
        kind=row["package__kind"], name=row["package__name"], epoch=row["package__epoch"],
        version=row["package__version"], release=row["package__release"],
        arch=row["package__arch"], filename=row["package__filename"], nvra=row["package__nvra"],
        distro=row["package__build__distro"], build_name=row["package__build__name"],
        build_version=row["package__build__version"],
        build_release=row["package__build__release"],
        instance=row["package__build__instance"]))


def candidate_urls(
    row: Row, configured: tuple[tuple[str, str, str], ...] | None = None
) -> list[dict[str, str]]:
    """Mirror templates first, then the package's stored URL (Koji or where it was imported
    from), then archive and other templates: the order a client should try them in.
    ``configured``: url_templates(), when the caller has it already."""
    distro = row["package__build__distro"]
    if configured is None:
        configured = url_templates()
    templates = [t for t in configured if distro.startswith(t[1])]
    urls: list[dict[str, str]] = []
    context = _url_context(row) if templates else {}
    for kind, _distro, template in templates:
        if kind == "mirror":
            urls.append({"kind": kind, "url": urltemplates.render(template, context)})
    if row["package__url"]:
        kind = "koji" if row["package__build__instance"] else "package"
        urls.append({"kind": kind, "url": row["package__url"]})
    for kind, _distro, template in templates:
        if kind != "mirror":
            urls.append({"kind": kind, "url": urltemplates.render(template, context)})
    unique: dict[str, dict[str, str]] = {}
    for u in urls:
        unique.setdefault(u["url"], u)  # a template may render the stored URL again
    return list(unique.values())


# --- documents ---------------------------------------------------------------------------------


def package_doc(row: Row) -> dict[str, Any]:
    return {
        "nvra": row["package__nvra"],
        "kind": row["package__kind"],
        "name": row["package__name"],
        "epoch": row["package__epoch"],
        "version": row["package__version"],
        "release": row["package__release"],
        "arch": row["package__arch"],
        "filename": row["package__filename"],
        "size": row["package__size"],
        "sha256": row["package__sha256"],
        "sigmd5": row["package__sigmd5"],
        "koji_rpm_id": row["package__koji_rpm_id"],
    }


def build_doc(row: Row) -> dict[str, Any]:
    return {
        "name": row["package__build__name"],
        "epoch": row["package__build__epoch"],
        "version": row["package__build__version"],
        "release": row["package__build__release"],
        "distro": row["package__build__distro"],
        "instance": row["package__build__instance"],
        "koji_build_id": row["package__build__koji_build_id"],
    }


def _note(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text  # the importer validates notes; never fail a lookup over one


_BYTE_ORDER = {True: "big", False: "little", None: None}


def _big(value: Any) -> bool | None:
    # A raw cursor gives 0/1 (SQLite, MySQL) where the ORM gives a bool.
    return None if value is None else bool(value)


class Matches:
    """Turns ELF rows into match objects, sharing each package's documents between rows."""

    def __init__(self) -> None:
        self._packages: dict[int, Parts] = {}
        self._templates = url_templates()  # once per response, not once per package

    def package_parts(self, row: Row) -> Parts:
        """The package, build and urls documents of the row's package."""
        parts = self._packages.get(row["package_id"])
        if parts is None:
            parts = (package_doc(row), build_doc(row), candidate_urls(row, self._templates))
            self._packages[row["package_id"]] = parts
        return parts

    def match(self, row: Row) -> dict[str, Any]:
        package, build, urls = self.package_parts(row)
        return {
            "buildid": row["build_id"].hex(),
            "path": row["path"],
            "elf_type": elf_type_name(row["elf_type"]),
            "machine": machine_name(row["machine"], row["elf_class"], _big(row["big_endian"])),
            "elf_class": row["elf_class"] or None,  # 0: imported before it was stored
            "byte_order": _BYTE_ORDER[_big(row["big_endian"])],
            "debug": bool(row["debug"]),
            "package_note": _note(row["package_note"]),
            "package": package,
            "build": build,
            "urls": urls,
        }


def sources(rows: list[Row]) -> list[dict[str, Any]]:
    """Source packages (queries.source_rows): package, build and candidate URLs of each."""
    configured = url_templates()
    return [{"package": package_doc(r), "build": build_doc(r),
             "urls": candidate_urls(r, configured)} for r in rows]


def matches(rows: list[Row]) -> list[dict[str, Any]]:
    m = Matches()
    return [m.match(row) for row in rows]


def compat_url(row: Row) -> str:
    """The one URL of the original service: the stored (Koji) URL, else the first candidate."""
    if row["package__url"]:
        return str(row["package__url"])
    urls = candidate_urls(row)
    return urls[0]["url"] if urls else ""


def compat(rows: list[Row]) -> list[dict[str, str]]:
    """The original service's shape: buildid, elf (install path), rpm (NVRA), distro, url."""
    urls: dict[int, str] = {}
    out = []
    for row in rows:
        url = urls.get(row["package_id"])
        if url is None:
            url = urls[row["package_id"]] = compat_url(row)
        out.append({
            "buildid": row["build_id"].hex(),
            "elf": row["path"],
            "rpm": row["package__nvra"],
            "distro": row["package__build__distro"],
            "url": url,
        })
    return out
