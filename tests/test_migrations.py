"""Migrations are checked in and complete; the configuration picks the right database."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from darkcore import config


@pytest.mark.django_db
def test_models_have_no_missing_migration() -> None:
    # Exits non-zero (SystemExit) when a model change lacks its migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_database_url_wins(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DARKSERVER_DATABASE_URL", "mysql://u:p%40ss@db.example:3307/ds")
    db = config.database_settings("web")
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["USER"], db["PASSWORD"], db["NAME"]) == (
        "django.db.backends.mysql", "db.example", "3307", "u", "p@ss", "ds")


def test_ini_per_role_then_sqlite_default(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("DARKSERVER_DATABASE_URL", raising=False)
    web = tmp_path / "web.conf"
    web.write_text("[darkserverweb]\nhost=10.0.0.5\nuser=ro\npassword=x\ndatabase=dark\n")
    monkeypatch.setenv("DARKSERVER_WEB_CONF", str(web))
    monkeypatch.setenv("DARKSERVER_CONF", str(tmp_path / "absent.conf"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert config.database_settings("web")["HOST"] == "10.0.0.5"
    assert config.database_settings("web")["USER"] == "ro"
    importer = config.database_settings("importer")
    assert importer["ENGINE"] == "django.db.backends.sqlite3"
    assert importer["NAME"] == str(tmp_path / "data" / "darkserver" / "darkserver.sqlite3")


def test_bad_database_url_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("DARKSERVER_DATABASE_URL", "postgres://x/y")
    with pytest.raises(config.ConfigError, match="sqlite or mysql"):
        config.database_settings("web")
