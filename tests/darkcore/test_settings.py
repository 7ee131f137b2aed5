"""The settings registry: one place per setting, environment over INI, read once, documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from darkcore import settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Where the project's own code, configuration and docs live (not .venv, not .git).
SOURCES = ["darkcore", "darkserver", "darkimport", "darkclient", "conf", "scripts", "bench",
           "tests", "docs", ".ci"]
# The hub plugin runs inside Koji's hub, where Darkserver is not installed: it reads its one
# variable itself (the registry documents it).
READS_ITS_OWN = {ROOT / "conf" / "koji-hub-plugin" / "darkserver_plugin.py"}


def _files() -> list[Path]:
    found = [README]
    for top in SOURCES:
        found.extend(p for p in (ROOT / top).rglob("*") if p.is_file()
                     and p.suffix in ("", ".py", ".sh", ".md", ".conf", ".toml", ".service",
                                      ".lua", ".txt", ".json"))
    return found


def test_the_readme_table_is_the_registry() -> None:
    text = README.read_text()
    block = re.search(r"<!-- settings table.*?-->\n(.*?)<!-- /settings table -->", text, re.S)
    assert block, "README.md has no generated settings table"
    assert block.group(1) == settings.markdown_table(), (
        "README's settings table differs from darkcore.settings: "
        "run `python -m darkcore.settings` and paste its output")


def test_the_table_is_printed_by_the_module() -> None:
    out = subprocess.run([sys.executable, "-m", "darkcore.settings"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out == settings.markdown_table()
    assert out.count("\n") == len(settings.REGISTRY) + 2


def test_every_darkserver_variable_the_project_names_is_registered() -> None:
    named: dict[str, Path] = {}
    for path in _files():
        text = path.read_text(errors="replace")
        for name in re.findall(r"\bDARKSERVER_[A-Z0-9_]*[A-Z0-9]", text):
            named.setdefault(name, path)
    unknown = {n: str(p.relative_to(ROOT)) for n, p in named.items()
               if n not in settings.REGISTRY}
    assert not unknown, f"settings missing from darkcore/settings.py: {unknown}"


def test_nothing_reads_a_darkserver_variable_around_the_registry() -> None:
    # Reads: environ.get("DARKSERVER_..."), getenv(...), environ["DARKSERVER_..."] not assigned.
    around = re.compile(r"(environ\.get\(|getenv\(|environ\[)\s*f?[\"']DARKSERVER_\w*[\"']"
                        r"(?!\]?\s*=[^=])")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}" for p in _files()
        if p.suffix == ".py" and p not in READS_ITS_OWN
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if around.search(line)
    ]
    assert not offenders, offenders
    assert not [p for p in _files() if p.suffix == ".py" and p != Path(__file__)
                and "config.setting(" in p.read_text()]


def test_environment_wins_over_the_ini_which_wins_over_the_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ini = tmp_path / "darkserver.conf"
    ini.write_text("[settings]\nqueue_max_attempts = 7\namqp_url = amqp://from-ini/\n")
    monkeypatch.setenv("DARKSERVER_CONF", str(ini))
    monkeypatch.setenv("DARKSERVER_AMQP_URL", "amqp://from-env/")
    monkeypatch.delenv("DARKSERVER_QUEUE_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("DARKSERVER_QUEUE", raising=False)
    assert settings.AMQP_URL.get() == "amqp://from-env/"
    assert settings.AMQP_URL.source() == "env"
    assert settings.QUEUE_MAX_ATTEMPTS.get() == 7
    assert settings.QUEUE_MAX_ATTEMPTS.source() == f"{ini} [settings] queue_max_attempts"
    assert settings.QUEUE.get() == "darkserver.builds"
    assert settings.QUEUE.source() == "default"


def test_a_setting_without_an_ini_key_ignores_the_ini(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ini = tmp_path / "darkserverweb.conf"
    ini.write_text("[settings]\nmax_batch = 3\nurl_templates = []\n")
    monkeypatch.setenv("DARKSERVER_WEB_CONF", str(ini))
    monkeypatch.delenv("DARKSERVER_MAX_BATCH", raising=False)
    assert settings.MAX_BATCH.get() == 10000
    assert settings.URL_TEMPLATES.source().startswith(str(ini))


def test_values_are_read_once_until_reload(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    ini = tmp_path / "darkserver.conf"
    ini.write_text("[settings]\ndeb_distro = deb11\n")
    monkeypatch.setenv("DARKSERVER_CONF", str(ini))
    monkeypatch.delenv("DARKSERVER_DEB_DISTRO", raising=False)
    monkeypatch.delenv("DARKSERVER_QUEUE", raising=False)
    assert settings.DEB_DISTRO.get() == "deb11"
    ini.write_text("[settings]\ndeb_distro = deb12\nqueue = q2\n")
    assert settings.DEB_DISTRO.get() == "deb11"  # neither the value nor the file is re-read
    assert settings.QUEUE.get() == "darkserver.builds"  # the file as parsed the first time
    settings.reload()
    assert settings.DEB_DISTRO.get() == "deb12"
    assert settings.QUEUE.get() == "q2"


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("DARKSERVER_MAX_BATCH", "many", r"DARKSERVER_MAX_BATCH='many': want an integer"),
    ("DARKSERVER_FASTPATH", "maybe", r"DARKSERVER_FASTPATH='maybe': want 1 or 0"),
    ("DARKSERVER_ROLE", "admin", r"DARKSERVER_ROLE='admin': want one of web, importer"),
    ("DARKSERVER_EXTERNAL_DECOMPRESS", "2", r"want one of auto, 0, 1"),
])
def test_a_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, raw: str,
                                       message: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(settings.ConfigError, match=message):
        settings.REGISTRY[name].get()


def test_a_bad_ini_value_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ini = tmp_path / "darkserver.conf"
    ini.write_text("[settings]\nqueue_retry_delay_ms = soon\n")
    monkeypatch.setenv("DARKSERVER_CONF", str(ini))
    monkeypatch.delenv("DARKSERVER_QUEUE_RETRY_DELAY_MS", raising=False)
    with pytest.raises(settings.ConfigError, match=re.escape(
            f"{ini} [settings] queue_retry_delay_ms='soon': want an integer")):
        settings.QUEUE_RETRY_DELAY_MS.get()


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("0", False),
                                            ("off", False)])
def test_booleans(monkeypatch: pytest.MonkeyPatch, raw: str, value: bool) -> None:
    monkeypatch.setenv("DARKSERVER_CONN_HEALTH_CHECKS", raw)
    assert settings.CONN_HEALTH_CHECKS.get() is value


def test_every_setting_is_documented_once() -> None:
    for s in settings.REGISTRY.values():
        assert s.name.startswith("DARKSERVER_") and s.doc and "|" not in s.doc, s.name
        wanted = {"int": int, "bool": bool, "float": float, "size": int, "str": str}[s.type_name]
        assert isinstance(s.default, wanted), s.name
    inis = [(s.ini, s.ini_key) for s in settings.REGISTRY.values() if s.ini]
    assert len(inis) == len(set(inis))
