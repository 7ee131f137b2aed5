"""Every ``DARKSERVER_*`` setting, once: name, type, default, one-line doc, INI key.

    from darkcore.settings import MAX_BATCH
    MAX_BATCH.get()            # -> int, from the environment, else the INI file, else 10000

The environment wins over the INI files; a setting with an INI key is also read from
``[settings]`` of its file: the web's ``darkserverweb.conf`` (``DARKSERVER_WEB_CONF``) or the
importer's ``darkserver.conf`` (``DARKSERVER_CONF``). Each value is read once per process,
on first use, and each INI file parsed once: a worker imports thousands of builds and must not
re-parse its configuration for each. ``reload()`` forgets everything read so far; the test
suite's ``monkeypatch`` calls it whenever it changes the environment (tests/conftest.py), and a
process that sets a variable for itself at start-up (darkimport.djangosetup) calls it after.

``python -m darkcore.settings`` prints the README's table of settings, which a test keeps equal
to this registry. Nothing here imports Django.
"""

from __future__ import annotations

import configparser
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

PREFIX = "DARKSERVER_"
SECTION = "settings"  # the INI section of plain settings

# Who reads a setting (the README table's "read by" column).
WEB, IMPORTER, CLIENT, GUNICORN, CORE, HUB_PLUGIN, TESTS = (
    "web", "importer", "client", "gunicorn", "web, importer", "hub plugin", "tests")
# Which INI file an INI key lives in.
WEB_INI, IMPORTER_INI = "darkserverweb.conf", "darkserver.conf"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


def _int(raw: str) -> int:
    return int(raw.strip())


def _float(raw: str) -> float:
    return float(raw.strip())


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """"64G" -> 68719476736, "1.5K" -> 1536: K/M/G/T are powers of 1024 ("KiB" and "GB" read
    the same); plain digits are bytes or a count. ValueError for anything else."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 100, 64M, 8G)")
    return int(float(m.group(1)) * 1024 ** "_KMGT".index(m.group(2).upper() or "_"))


_size = parse_size


def _str(raw: str) -> str:
    return raw


_WANTED = {"int": "an integer", "float": "a number", "size": "a size (e.g. 100, 64M, 8G)",
           "bool": "1 or 0 (also yes/no, true/false, on/off)",
           "str": "a string"}


@dataclass(frozen=True, slots=True, eq=False)
class Setting(Generic[T]):
    """One setting: ``get()`` is its value in this process."""

    name: str  # the environment variable, DARKSERVER_...
    parse: Callable[[str], T]
    default: T
    doc: str
    read_by: str
    ini: str | None = None  # WEB_INI or IMPORTER_INI: also read from [settings] <ini_key>
    shown_default: str | None = None  # the README's default, when repr(default) says little
    choices: tuple[str, ...] = ()

    @property
    def ini_key(self) -> str:
        return self.name.removeprefix(PREFIX).lower()

    @property
    def type_name(self) -> str:
        parse: object = self.parse
        return ("bool" if parse is _bool else "int" if parse is _int
                else "float" if parse is _float else "size" if parse is _size else "str")

    def get(self) -> T:
        return _resolve(self)[0]  # type: ignore[no-any-return]

    def source(self) -> str:
        """Where the value came from: "env", the INI file's path, or "default"."""
        return _resolve(self)[1]


REGISTRY: dict[str, Setting[Any]] = {}


def _define(name: str, parse: Callable[[str], T], default: T, doc: str, read_by: str,
            **kw: Any) -> Setting[T]:
    setting = Setting(PREFIX + name, parse, default, doc, read_by, **kw)
    assert setting.name not in REGISTRY, setting.name
    REGISTRY[setting.name] = setting
    return setting


# --- where the configuration is --------------------------------------------------------------

ROLE = _define("ROLE", _str, "web", "which database section this process uses: web or importer "
               "(the importer sets it)", CORE, choices=("web", "importer"))
WEB_CONF = _define("WEB_CONF", _str, "/etc/darkserver/darkserverweb.conf",
                   "web INI file: database `[darkserverweb]` (read-only user), `[settings]`", WEB)
CONF = _define("CONF", _str, "/etc/darkserver/darkserver.conf",
               "importer INI file: database `[darkserver]` (read/write user), `[settings]`",
               IMPORTER)
DATABASE_URL = _define("DATABASE_URL", _str, "",
                       "`sqlite:////abs/path.sqlite3` or `mysql://user:pass@host:port/db`; "
                       "wins over the INI files' database sections", CORE)

# --- database connections --------------------------------------------------------------------

SQLITE_MMAP = _define("SQLITE_MMAP", _int, 1 << 40,
                      "bytes of an SQLite database read through mmap; 0: off", CORE,
                      shown_default="1 TiB (SQLite caps it, 2 GiB)")
CONN_MAX_AGE = _define("CONN_MAX_AGE", _int, 600,
                       "seconds a MySQL connection is kept open (Django `CONN_MAX_AGE`)", CORE)
CONN_HEALTH_CHECKS = _define("CONN_HEALTH_CHECKS", _bool, False,
                             "1: ping a kept MySQL connection before each request", CORE)

# --- read replicas (the web only; docs/DEPLOYMENT.md) ----------------------------------------

DATABASE_REPLICAS = _define(
    "DATABASE_REPLICAS", _str, "",
    "comma-separated `mysql://` URLs of read replicas the web reads from in order, else the "
    "primary; also `replicas` in the web INI's `[darkserverweb]`", WEB)
REPLICA_MAX_LAG = _define("REPLICA_MAX_LAG", _float, 30.0,
                          "seconds behind the primary past which a replica is skipped", WEB,
                          shown_default="`30`")
REPLICA_CHECK_SECONDS = _define(
    "REPLICA_CHECK_SECONDS", _float, 2.0,
    "how often a replica's reachability and lag are checked (a skipped one comes back then)",
    WEB, shown_default="`2`")
REPLICA_CONNECT_TIMEOUT = _define("REPLICA_CONNECT_TIMEOUT", _int, 2,
                                  "seconds to connect to a replica before it is skipped", WEB)
REPLICA_READ_TIMEOUT = _define("REPLICA_READ_TIMEOUT", _int, 5,
                               "seconds a replica may take to answer before it is skipped", WEB)

# --- web service -----------------------------------------------------------------------------

SECRET_KEY = _define("SECRET_KEY", _str, "darkserver-has-no-secrets-to-sign",
                     "Django `SECRET_KEY`; nothing is signed (no sessions, no users)", WEB,
                     shown_default="a fixed string")
DEBUG = _define("DEBUG", _bool, False, "Django `DEBUG` (never in production)", WEB)
ALLOWED_HOSTS = _define("ALLOWED_HOSTS", _str, "*", "Django `ALLOWED_HOSTS`, comma separated",
                        WEB)
MAX_BODY = _define("MAX_BODY", _int, 2 * 1024 * 1024, "largest request body, bytes", WEB,
                   shown_default="2 MiB")
MAX_BATCH = _define("MAX_BATCH", _int, 10000, "most build-ids in one batch request", WEB)
MAX_MATCHES = _define("MAX_MATCHES", _int, 1000,
                      "most rows one prefix or path lookup returns", WEB)
FASTPATH = _define("FASTPATH", _bool, True,
                   "0: the three hot lookup routes go through Django too", WEB)
ANSWER_CACHE_MB = _define("ANSWER_CACHE_MB", _float, 64.0,
                          "MiB of lookup answers each web worker keeps (0: none); a change in "
                          "the database shows within 1 s (docs/DEPLOYMENT.md)", WEB, ini=WEB_INI,
                          shown_default="`64`")
URL_TEMPLATES = _define("URL_TEMPLATES", _str, "[]",
                        "candidate download URLs the API lists (JSON list, docs/API.md; fields "
                        "in the README, URL templates)", WEB, ini=WEB_INI)
BASE_URL = _define("BASE_URL", _str, "",
                   "the service's public URL for the page's links and examples; empty: relative "
                   "links (never taken from the request's Host header)", WEB, ini=WEB_INI)
LOG_LEVEL = _define("LOG_LEVEL", _str, "warning", "log level of the web service and gunicorn",
                    WEB)

# --- gunicorn (conf/gunicorn.conf.py) --------------------------------------------------------

BIND = _define("BIND", _str, "127.0.0.1:8000", "address gunicorn listens on", GUNICORN)
WORKERS = _define("WORKERS", _int, 0, "gunicorn worker processes; 0: one per CPU", GUNICORN)
WORKER_CLASS = _define("WORKER_CLASS", _str, "darkserver.httpedge.EdgeWorker",
                       "gunicorn worker class: uvicorn's worker with the HTTP edge's bounds "
                       "(darkserver/httpedge.py); `gthread` with `darkserver.wsgi` for WSGI",
                       GUNICORN)
THREADS = _define("THREADS", _int, 2, "threads per worker of the `gthread` worker class",
                  GUNICORN)
READ_TIMEOUT = _define("READ_TIMEOUT", _int, 30,
                       "seconds a request may take to arrive whole (head and body); a client "
                       "that stalls is answered 408 and cut off", GUNICORN)
MAX_HEADER_BYTES = _define("MAX_HEADER_BYTES", _int, 64 * 1024,
                           "largest request line + headers, bytes (431/414 past it)", GUNICORN,
                           shown_default="64 KiB")
METRICS_DIR = _define("METRICS_DIR", _str, "",
                      "directory of prometheus_client's per-worker files, emptied at start; "
                      "empty: a private one, removed at exit", GUNICORN)
ACCESS_LOG = _define("ACCESS_LOG", _str, "", "gunicorn access log file (`-`: stdout); "
                     "empty: none", GUNICORN)

# --- importer --------------------------------------------------------------------------------

RPM_URL_TEMPLATE = _define(
    "RPM_URL_TEMPLATE", _str,
    "https://kojipkgs.fedoraproject.org/packages/{build_name}/{build_version}/{build_release}"
    "/{arch}/{filename}",
    "download URL stored per rpm (fields: README, URL templates)", IMPORTER, ini=IMPORTER_INI,
    shown_default="Koji's package layout")
DEB_URL_TEMPLATE = _define(
    "DEB_URL_TEMPLATE", _str,
    "https://deb.debian.org/debian/pool/main/{pool_prefix}/{build_name}/{filename}",
    "download URL stored per deb (fields: README, URL templates)", IMPORTER, ini=IMPORTER_INI,
    shown_default="Debian's pool layout")
DEB_DISTRO = _define("DEB_DISTRO", _str, "", "distro tag for debs; empty: from `+debNN` in the "
                     "version, else `debian`", IMPORTER, ini=IMPORTER_INI)
EXTERNAL_DECOMPRESS = _define("EXTERNAL_DECOMPRESS", _str, "auto",
                              "`xz -T0` for payloads: auto (multi-block xz only), 1 always, "
                              "0 never", IMPORTER, choices=("auto", "0", "1"))
# Resource bounds per package (darkcore/limits.py): a package over one fails, naming it. Far
# above what a distribution ships (a kernel debuginfo rpm unpacks to ~6 GiB in ~10^4 members).
MAX_UNPACKED_BYTES = _define("MAX_UNPACKED_BYTES", _size, 64 << 30,
                             "decompressed bytes per package (K/M/G/T suffixes)", IMPORTER,
                             ini=IMPORTER_INI, shown_default="64G")
MAX_MEMBERS = _define("MAX_MEMBERS", _size, 1_000_000, "archive members per package", IMPORTER,
                      ini=IMPORTER_INI, shown_default="1000000")
MAX_SPOOL_MEMBER = _define("MAX_SPOOL_MEMBER", _size, 8 << 30,
                           "bytes of one ELF member held for parsing (memory up to 32 MiB, then "
                           "a temporary file)", IMPORTER, ini=IMPORTER_INI, shown_default="8G")
MAX_SPOOL_PACKAGE = _define("MAX_SPOOL_PACKAGE", _size, 32 << 30,
                            "bytes of ELF members held, summed over one package", IMPORTER,
                            ini=IMPORTER_INI, shown_default="32G")
MAX_WARNINGS = _define("MAX_WARNINGS", _size, 100, "warnings kept per package, then one "
                       "\"... and N more warnings\" line", IMPORTER, ini=IMPORTER_INI,
                       shown_default="100")
REPO_RETRIES = _define("REPO_RETRIES", _int, 3, "tries of a repository download that breaks off "
                       "(`darkserver-import repo --retries`)", IMPORTER, ini=IMPORTER_INI)
KOJI_CONF = _define("KOJI_CONF", _str, "/etc/darkserver/koji-instances.conf",
                    "Koji instances file (INI or JSON); none: Fedora's primary hub", IMPORTER,
                    ini=IMPORTER_INI)
AMQP_URL = _define("AMQP_URL", _str, "amqp://guest:guest@127.0.0.1:5672/%2F",
                   "RabbitMQ broker of the work queue", IMPORTER, ini=IMPORTER_INI)
QUEUE = _define("QUEUE", _str, "darkserver.builds",
                "work queue name (`.retry` and `.dead` beside it)", IMPORTER, ini=IMPORTER_INI)
QUEUE_MAX_ATTEMPTS = _define("QUEUE_MAX_ATTEMPTS", _int, 5,
                             "attempts of a build before it goes to the `.dead` queue",
                             IMPORTER, ini=IMPORTER_INI)
QUEUE_RETRY_DELAY_MS = _define("QUEUE_RETRY_DELAY_MS", _int, 60000,
                               "milliseconds before a failed build is tried again", IMPORTER,
                               ini=IMPORTER_INI)

# --- elsewhere -------------------------------------------------------------------------------

KOJI_PLUGIN_CONF = _define("KOJI_PLUGIN_CONF", _str, "/etc/koji-hub/plugins/darkserver.conf",
                           "the Koji hub plugin's file (the plugin reads it itself: it runs "
                           "inside the hub, without Darkserver installed)", HUB_PLUGIN)
URL = _define("URL", _str, "", "the server darkclient asks (wins over `~/.config/"
              "darkclient.conf`, loses to `--server`)", CLIENT)
TEST_MYSQL_URL = _define("TEST_MYSQL_URL", _str, "mysql://root:@127.0.0.1:3306/",
                         "MariaDB server of the test suite's `mariadb` tests", TESTS)
TEST_REPLICA_URL = _define("TEST_REPLICA_URL", _str, "mysql://root:@127.0.0.1:3307/",
                           "MariaDB read replica of the test server (scripts/services.sh)", TESTS)
FUZZ_EXAMPLES = _define("FUZZ_EXAMPLES", _int, 0, "examples per fuzz harness (0: the short "
                        "run every suite does; docs/FUZZING.md)", TESTS)
TEST_AMQP_URL = _define("TEST_AMQP_URL", _str, "amqp://guest:guest@127.0.0.1:5672/%2F",
                        "RabbitMQ broker of the queue tests and `bench/bench_queue.py`", TESTS)
CI_DB = _define("CI_DB", _str, "darkserver_ci",
                "MariaDB database `scripts/test.sh` runs the suite on (the script reads it)",
                TESTS)


# --- reading ---------------------------------------------------------------------------------

_lock = threading.Lock()
_values: dict[str, tuple[Any, str]] = {}
_ini_files: dict[Path, configparser.ConfigParser | None] = {}


def reload() -> None:
    """Forget every value and INI file read so far: the next ``get()`` reads them again."""
    with _lock:
        _values.clear()
        _ini_files.clear()


def parse_ini(path: Path) -> configparser.ConfigParser:
    """An INI file read the way every Darkserver file is (UTF-8, no ``%`` interpolation: URL
    templates hold ``%2F``; inline comments after a blank, ``timeout = 10  ; seconds``, as
    examples write them, while a ``;`` or ``#`` inside a value stays); ConfigError names the
    file."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable configuration: {exc}") from None
    return parser


def ini_file(path: Path) -> configparser.ConfigParser | None:
    """The parsed INI file (once per process), None when there is no such file."""
    with _lock:
        if path in _ini_files:
            return _ini_files[path]
    parser = parse_ini(path) if path.is_file() else None
    with _lock:
        _ini_files[path] = parser
    return parser


def ini_path(ini: str) -> Path:
    """The path of WEB_INI or IMPORTER_INI in this process."""
    return Path(WEB_CONF.get() if ini == WEB_INI else CONF.get())


def _raw(setting: Setting[Any]) -> tuple[str | None, str]:
    env = os.environ.get(setting.name)
    if env is not None:
        return env, "env"
    if setting.ini is not None:
        path = ini_path(setting.ini)
        parser = ini_file(path)
        if parser is not None and parser.has_option(SECTION, setting.ini_key):
            return parser.get(SECTION, setting.ini_key), f"{path} [{SECTION}] {setting.ini_key}"
    return None, "default"


def _resolve(setting: Setting[Any]) -> tuple[Any, str]:
    found = _values.get(setting.name)
    if found is not None:
        return found
    raw, source = _raw(setting)
    value = setting.default
    if raw is not None:
        where = setting.name if source == "env" else source
        if setting.choices and raw.strip() not in setting.choices:
            raise ConfigError(f"{where}={raw!r}: want one of {', '.join(setting.choices)}")
        try:
            value = setting.parse(raw)
        except ValueError:
            raise ConfigError(f"{where}={raw!r}: want {_WANTED[setting.type_name]}") from None
    with _lock:
        _values[setting.name] = (value, source)
    return value, source


# --- documentation ---------------------------------------------------------------------------


def markdown_table() -> str:
    """The README's table of settings, one row per setting, in registry order."""
    rows = ["| setting | INI `[settings]` key | default | read by | meaning |",
            "|---|---|---|---|---|"]
    for s in REGISTRY.values():
        ini = f"`{s.ini_key}` ({s.ini})" if s.ini else "—"
        if s.shown_default is not None:
            default = s.shown_default
        elif s.parse is _bool:
            default = "1" if s.default else "0"
        elif s.default == "":
            default = "—"
        else:
            default = f"`{s.default}`"
        rows.append(f"| `{s.name}` | {ini} | {default} | {s.read_by} | {s.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
