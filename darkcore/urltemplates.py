"""Download-URL templates: one vocabulary of fields for the importer, the server and the client.

A template is a ``str.format`` string over the fields in ``FIELDS``, e.g.
``https://kojipkgs.fedoraproject.org/packages/{build_name}/{build_version}/{build_release}/{arch}/{filename}``.
The importer renders ``DARKSERVER_RPM_URL_TEMPLATE``/``DARKSERVER_DEB_URL_TEMPLATE`` into the URL
it stores, the server renders ``DARKSERVER_URL_TEMPLATES`` into a match's candidate ``urls``,
the client renders the templates of darkclient.conf: all three through ``fields`` and ``render``
here, so one template gives one URL wherever it is configured.
"""

from __future__ import annotations

import functools
import platform
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from darkcore.settings import DEB_URL_TEMPLATE, RPM_URL_TEMPLATE

# Every field a template may use, with what it holds (the README's table is made from this).
FIELDS: dict[str, str] = {
    "name": "package name (`apr`, `libc6`)",
    "epoch": "epoch, empty when none",
    "version": "package version",
    "release": "rpm release / Debian revision",
    "arch": "architecture (`x86_64`, `noarch`, `amd64`, `all`)",
    "basearch": "`arch`, except a `noarch`/`all` package gets this machine's (mirror trees)",
    "nvra": "`name-version-release.arch` (deb: `name_version_arch`)",
    "filename": "the package's file name",
    "kind": "`rpm` or `deb`",
    "distro": "dist tag (`fc40`, `el9`, `deb12`)",
    "distro_version": "the number in the dist tag (`40`)",
    "releasever": "same as `distro_version` (Fedora's name)",
    "initial": "first letter of the package name, lower-case",
    "first": "same as `initial`",
    "build_name": "the build's (source package's) name",
    "source": "same as `build_name`",
    "build_version": "the build's version",
    "build_release": "the build's release",
    "pool_prefix": "Debian pool directory of `build_name` (`liba` for `libapr`, else `a`)",
    "source_prefix": "same as `pool_prefix`",
    "instance": "Koji instance the build came from, empty for local imports",
}

NOARCH = ("noarch", "all")


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the template and the fields."""


@dataclass(frozen=True, slots=True)
class Package:
    """What a template can say about one package: the same facts on all three sides."""

    kind: str
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    filename: str
    nvra: str
    distro: str
    build_name: str
    build_version: str
    build_release: str
    instance: str = ""


def pool_prefix(source: str) -> str:
    """Debian's pool directory: "libc6" -> "libc", "glibc" -> "g"."""
    return source[:4] if source.startswith("lib") and len(source) > 3 else source[:1]


def fields(package: Package, host_arch: str | None = None) -> dict[str, str]:
    """Every field of ``FIELDS`` for one package. ``host_arch``: ``basearch`` of a noarch
    package (default: this machine's)."""
    distro_version = "".join(re.findall(r"\d+", package.distro)[:1])
    initial = package.name[:1].lower()
    prefix = pool_prefix(package.build_name)
    basearch = package.arch
    if basearch in NOARCH:
        basearch = host_arch or platform.machine()
    return {
        "name": package.name,
        "epoch": "" if package.epoch is None else str(package.epoch),
        "version": package.version,
        "release": package.release,
        "arch": package.arch,
        "basearch": basearch,
        "nvra": package.nvra,
        "filename": package.filename,
        "kind": package.kind,
        "distro": package.distro,
        "distro_version": distro_version,
        "releasever": distro_version,
        "initial": initial,
        "first": initial,
        "build_name": package.build_name,
        "source": package.build_name,
        "build_version": package.build_version,
        "build_release": package.build_release,
        "pool_prefix": prefix,
        "source_prefix": prefix,
        "instance": package.instance,
    }


@functools.lru_cache(maxsize=256)  # a handful of templates, rendered for every package
def check(template: str) -> str:
    """``template`` when it uses only known fields, plainly; else TemplateError."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"URL template {template!r}: {exc}") from None
    for _text, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in FIELDS or spec or conversion:
            raise TemplateError(
                f"URL template {template!r}: {{{field}}} is not a field; fields are "
                + ", ".join("{" + f + "}" for f in FIELDS))
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """The URL ``template`` gives for a package's ``fields``."""
    check(template)
    return template.format_map(values)


def url_templates() -> dict[str, str]:
    """The importer's template per package kind (settings ``DARKSERVER_<KIND>_URL_TEMPLATE``)."""
    return {"rpm": check(RPM_URL_TEMPLATE.get()), "deb": check(DEB_URL_TEMPLATE.get())}


DEFAULT_URL_TEMPLATES = {"rpm": RPM_URL_TEMPLATE.default, "deb": DEB_URL_TEMPLATE.default}

EXAMPLE = fields(Package(
    kind="rpm", name="apr", epoch=None, version="1.4.5", release="1.fc16", arch="x86_64",
    filename="apr-1.4.5-1.fc16.x86_64.rpm", nvra="apr-1.4.5-1.fc16.x86_64", distro="fc16",
    build_name="apr", build_version="1.4.5", build_release="1.fc16", instance="primary"))


def markdown_table() -> str:
    """The README's table of fields, with their values for ``EXAMPLE``."""
    rows = ["| field | holds | apr-1.4.5-1.fc16.x86_64.rpm |", "|---|---|---|"]
    rows += [f"| `{{{name}}}` | {doc} | `{EXAMPLE[name]}` |" if EXAMPLE[name]
             else f"| `{{{name}}}` | {doc} | (empty) |" for name, doc in FIELDS.items()]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
