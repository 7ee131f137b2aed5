"""Client configuration: the server, timeouts, caches and per-distro download URL templates.

Precedence (last wins): built-in defaults, the INI file (``DARKCLIENT_CONF`` or
``$XDG_CONFIG_HOME/darkclient.conf``, by default ``~/.config/darkclient.conf``), the
``DARKSERVER_URL`` environment variable, ``--server``. Every option, with an example that works
when copied: ``conf/darkclient.conf``, documented in ``docs/CLIENT.md``. Comments may follow a
value after `` ;`` or `` #``.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from darkclient.errors import ConfigError
from darkcore import settings, urltemplates
from darkcore.settings import URL as SERVER_URL
from darkcore.settings import parse_ini

KINDS = ("mirror", "koji", "archive")

_FEDORA_DL = "https://dl.fedoraproject.org/pub/fedora/linux"
_FEDORA_ARCHIVE = "https://archives.fedoraproject.org/pub/archive/fedora/linux"
_FEDORA_TREE = "{releasever}/Everything/{basearch}"

DEFAULT_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "fc": {
        "mirror": [
            f"{_FEDORA_DL}/updates/{_FEDORA_TREE}/Packages/{{first}}/{{filename}}",
            f"{_FEDORA_DL}/releases/{_FEDORA_TREE}/os/Packages/{{first}}/{{filename}}",
        ],
        "mirror_debug": [
            f"{_FEDORA_DL}/updates/{_FEDORA_TREE}/debug/Packages/{{first}}/{{filename}}",
            f"{_FEDORA_DL}/releases/{_FEDORA_TREE}/debug/tree/Packages/{{first}}/{{filename}}",
        ],
        "koji": [
            "https://kojipkgs.fedoraproject.org/packages/{build_name}/{build_version}/"
            "{build_release}/{arch}/{filename}",
        ],
        "archive": [
            f"{_FEDORA_ARCHIVE}/updates/{_FEDORA_TREE}/Packages/{{first}}/{{filename}}",
            f"{_FEDORA_ARCHIVE}/releases/{_FEDORA_TREE}/os/Packages/{{first}}/{{filename}}",
        ],
        "archive_debug": [
            f"{_FEDORA_ARCHIVE}/updates/{_FEDORA_TREE}/debug/Packages/{{first}}/{{filename}}",
            f"{_FEDORA_ARCHIVE}/releases/{_FEDORA_TREE}/debug/tree/Packages/{{first}}/"
            "{filename}",
        ],
    },
    "deb": {
        "mirror": ["https://deb.debian.org/debian/pool/main/{pool_prefix}/{build_name}/{filename}"],
        "mirror_debug": [
            "https://deb.debian.org/debian-debug/pool/main/{pool_prefix}/{build_name}/{filename}"
        ],
    },
}


@dataclass(slots=True)
class Config:
    server: str = ""
    timeout: float = 10.0
    check_timeout: float = 3.0
    dead_host_ttl: float = 600.0
    cache_dir: Path = field(default_factory=lambda: Path("~/.cache/darkclient").expanduser())
    templates: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TEMPLATES.items()})
    source: str = "defaults"  # where the server setting came from, for error messages

    def templates_for(self, distro: str) -> dict[str, list[str]]:
        """The templates of the longest configured prefix of ``distro`` ("" matches all)."""
        best = max((p for p in self.templates if distro.startswith(p)), key=len, default=None)
        return self.templates[best] if best is not None else {}


def config_path() -> Path:
    env = os.environ.get("DARKCLIENT_CONF")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "darkclient.conf"


def _validate(template: str, where: str) -> str:
    try:
        return urltemplates.check(template)
    except urltemplates.TemplateError as exc:
        raise ConfigError(f"{where}: bad URL template: {exc}") from None


def _float(parser: configparser.ConfigParser, key: str, default: float, where: str) -> float:
    raw = parser.get("darkclient", key, fallback=None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{where}: [darkclient] {key} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{where}: [darkclient] {key} must be positive")
    return value


def load(server: str | None = None, path: Path | None = None) -> Config:
    cfg = Config()
    path = path or config_path()
    if path.exists():
        try:
            parser = parse_ini(path)
        except settings.ConfigError as exc:
            raise ConfigError(str(exc)) from None
        where = str(path)
        if parser.get("darkclient", "server", fallback=""):
            cfg.server = parser.get("darkclient", "server")
            cfg.source = where
        cfg.timeout = _float(parser, "timeout", cfg.timeout, where)
        cfg.check_timeout = _float(parser, "check_timeout", cfg.check_timeout, where)
        cfg.dead_host_ttl = _float(parser, "dead_host_ttl", cfg.dead_host_ttl, where)
        if parser.get("darkclient", "cache_dir", fallback=""):
            cfg.cache_dir = Path(parser.get("darkclient", "cache_dir")).expanduser()
        for section in parser.sections():
            if not section.startswith("urls"):
                continue
            prefix = section[4:].strip()
            entry = cfg.templates.setdefault(prefix, {})
            for key, value in parser.items(section):
                if key.removesuffix("_debug") not in KINDS:
                    raise ConfigError(f"{where}: [{section}] unknown key {key!r}; use "
                                      "mirror, koji, archive (each also with _debug)")
                entry[key] = [_validate(t.strip(), f"{where} [{section}] {key}")
                              for t in value.splitlines() if t.strip()]
    env = SERVER_URL.get()
    if env:
        cfg.server, cfg.source = env, "DARKSERVER_URL"
    if server:
        cfg.server, cfg.source = server, "--server"
    cfg.server = cfg.server.strip().rstrip("/")
    return cfg


def require_server(cfg: Config) -> str:
    if not cfg.server:
        raise ConfigError("no Darkserver configured: use --server URL, DARKSERVER_URL, or "
                          f"server = URL in [darkclient] of {config_path()}")
    if not cfg.server.startswith(("http://", "https://")):
        raise ConfigError(f"server URL must start with http:// or https:// "
                          f"(got {cfg.server!r} from {cfg.source})")
    return cfg.server
