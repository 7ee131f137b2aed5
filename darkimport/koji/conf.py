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

    [lab]
    profile = lab                   ; take server, topurl, serverca, cert ... from koji's own
                                    ; client config (/etc/koji.conf.d, ~/.koji/config)
    serverca = /etc/pki/lab-ca.pem  ; CA bundle for the hub and the package tree (HTTPS)
    no_ssl_verify = false           ; true: do not verify their certificates (tests only)
    cert = /etc/pki/lab-client.pem  ; client certificate (PEM with its key), if they ask

The TLS keys have the names and meaning of koji's own config files; ``server`` is accepted for
``hub``. JSON: ``{"primary": {"hub": "...", "topurl": "...", "sigkeys": ["..."]}, ...}`` with
the same optional keys.

Which instance, when none is named: the only one configured, else ``primary`` (built in when no
file exists). A hub given by URL alone is never filed under ``primary``: its name is given by
the user or found in the configuration by its URL (``instance_for_hub``).
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
    serverca: str = ""  # CA bundle (PEM) for HTTPS to the hub and package tree; "" = system's
    no_ssl_verify: bool = False
    cert: str = ""  # client certificate with its key (PEM), when the servers want one

    @property
    def verify(self) -> bool | str:
        """``requests``' verify: False, the CA bundle, or True (the system's CAs)."""
        if self.no_ssl_verify:
            return False
        return self.serverca or True


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


def default_instance_name(instances: dict[str, KojiInstance]) -> str:
    """The instance meant when none is named: the only one configured, else ``primary``."""
    if len(instances) == 1:
        return next(iter(instances))
    return DEFAULT_INSTANCE


def get_instance(name: str | None = None, path: str | Path | None = None) -> KojiInstance:
    instances = load_instances(path)
    wanted = name or default_instance_name(instances)
    try:
        return instances[wanted]
    except KeyError:
        known = ", ".join(sorted(instances)) or "none"
        hint = "" if name else "; name one with --instance"
        raise KojiConfigError(
            f"unknown Koji instance {wanted!r} (configured: {known}){hint}") from None


def instance_for_hub(hub: str, path: str | Path | None = None) -> KojiInstance | None:
    """The configured instance whose hub is ``hub`` (trailing slashes ignored), if any."""
    try:
        instances = load_instances(path)
    except KojiConfigError:
        return None
    want = hub.rstrip("/")
    found = [i for i in instances.values() if i.hub == want]
    return found[0] if len(found) == 1 else None


def _from_ini(path: Path, text: str) -> dict[str, KojiInstance]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise KojiConfigError(f"{path}: {exc}") from exc
    found = {}
    for name in parser.sections():
        found[name] = _instance(path, name, dict(parser[name]))
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
        found[name] = _instance(path, name, entry)
    return found


_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off", ""}


def _instance(path: Path, name: str, entry: dict[str, Any]) -> KojiInstance:
    values: dict[str, Any] = {}
    profile = entry.get("profile")
    if profile:
        values.update(_koji_profile(path, name, str(profile)))
    values.update({k: v for k, v in entry.items() if v is not None})
    hub = values.get("hub") or values.get("server")
    topurl = values.get("topurl")
    for field, value in (("hub", hub), ("topurl", topurl)):
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise KojiConfigError(f"{path}: [{name}] {field} must be an http(s) URL")
    assert isinstance(hub, str) and isinstance(topurl, str)
    keys = values.get("sigkeys") or []
    if isinstance(keys, str):
        keys = keys.replace(",", " ").split()
    serverca = str(values.get("serverca") or "")
    cert = str(values.get("cert") or "")
    for field, file in (("serverca", serverca), ("cert", cert)):
        if file and not Path(file).expanduser().is_file():
            raise KojiConfigError(f"{path}: [{name}] {field} {file}: no such file")
    return KojiInstance(name, hub.rstrip("/"), topurl.rstrip("/"),
                        tuple(str(k).lower() for k in keys),
                        serverca=str(Path(serverca).expanduser()) if serverca else "",
                        no_ssl_verify=_flag(path, name, values.get("no_ssl_verify", False)),
                        cert=str(Path(cert).expanduser()) if cert else "")


def _flag(path: Path, name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise KojiConfigError(f"{path}: [{name}] no_ssl_verify must be true or false, not {value!r}")


def _koji_profile(path: Path, name: str, profile: str) -> dict[str, Any]:
    """server, topurl, serverca, no_ssl_verify, cert from koji's own client configuration."""
    import koji

    try:
        opts = koji.read_config(profile)
    except koji.ConfigurationError as exc:
        raise KojiConfigError(f"{path}: [{name}] profile {profile!r}: {exc}") from exc
    return {k: opts[k] for k in ("server", "topurl", "serverca", "no_ssl_verify", "cert")
            if opts.get(k) not in (None, "")}
