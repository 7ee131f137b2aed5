"""Koji instances: which hub to ask and where its packages are served.

Fedora ran several Koji instances (primary, and the secondary-architecture hubs arm, ppc and
s390), each with its own hub and package tree. They are read from an INI file (one section per
instance) or a JSON map (the original service's format), found at, first match wins:

1. ``DARKSERVER_KOJI_CONF``;
2. the ``koji_conf`` setting of the importer's INI (``[settings]`` of darkserver.conf);
3. ``/etc/darkserver/koji-instances.conf``.

With no file at all the built-in Fedora primary instance is used.

INI::

    [primary]
    hub = https://koji.fedoraproject.org/kojihub
    topurl = https://kojipkgs.fedoraproject.org
    sigkeys = a15b79cc 18b8e74c     ; optional: prefer signed copies by these keys, in order

JSON: ``{"primary": {"hub": "...", "topurl": "...", "sigkeys": ["..."]}, ...}``.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkcore.settings import KOJI_CONF

DEFAULT_PATH = KOJI_CONF.default
DEFAULT_INSTANCE = "primary"


class KojiConfigError(Exception):
    """The Koji instances file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class KojiInstance:
    name: str
    hub: str  # XML-RPC endpoint, e.g. https://koji.fedoraproject.org/kojihub
    topurl: str  # package tree root, e.g. https://kojipkgs.fedoraproject.org
    sigkeys: tuple[str, ...] = ()  # lower-case key ids; () = always the unsigned copy


BUILTIN = {
    DEFAULT_INSTANCE: KojiInstance(
        DEFAULT_INSTANCE,
        "https://koji.fedoraproject.org/kojihub",
        "https://kojipkgs.fedoraproject.org",
    )
}


def config_path() -> Path:
    return Path(KOJI_CONF.get() or DEFAULT_PATH)


def load_instances(path: str | Path | None = None) -> dict[str, KojiInstance]:
    """All configured instances by name. An explicit ``path`` must exist."""
    chosen = Path(path) if path is not None else config_path()
    if not chosen.is_file():
        if path is not None or KOJI_CONF.source() == "env":
            raise KojiConfigError(f"{chosen}: no such file")
        return dict(BUILTIN)
    text = chosen.read_text(encoding="utf-8")
    if chosen.suffix == ".json" or text.lstrip().startswith("{"):
        return _from_json(chosen, text)
    return _from_ini(chosen, text)


def get_instance(name: str | None = None, path: str | Path | None = None) -> KojiInstance:
    instances = load_instances(path)
    wanted = name or DEFAULT_INSTANCE
    try:
        return instances[wanted]
    except KeyError:
        known = ", ".join(sorted(instances)) or "none"
        raise KojiConfigError(f"unknown Koji instance {wanted!r} (configured: {known})") from None


def _from_ini(path: Path, text: str) -> dict[str, KojiInstance]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise KojiConfigError(f"{path}: {exc}") from exc
    found = {}
    for name in parser.sections():
        sec = parser[name]
        found[name] = _instance(path, name, sec.get("hub"), sec.get("topurl"),
                                sec.get("sigkeys", "").replace(",", " ").split())
    return found


def _from_json(path: Path, text: str) -> dict[str, KojiInstance]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise KojiConfigError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise KojiConfigError(f"{path}: want a JSON object of instances")
    found = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise KojiConfigError(f"{path}: instance {name!r} must be an object")
        keys = entry.get("sigkeys", [])
        if isinstance(keys, str):
            keys = keys.split()
        found[name] = _instance(path, name, entry.get("hub"), entry.get("topurl"), list(keys))
    return found


def _instance(path: Path, name: str, hub: object, topurl: object, keys: list[str]
              ) -> KojiInstance:
    for field, value in (("hub", hub), ("topurl", topurl)):
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise KojiConfigError(f"{path}: [{name}] {field} must be an http(s) URL")
    assert isinstance(hub, str) and isinstance(topurl, str)
    return KojiInstance(name, hub.rstrip("/"), topurl.rstrip("/"),
                        tuple(k.lower() for k in keys))
