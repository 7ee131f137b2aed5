"""Migrations are checked in and complete; the configuration picks the right database."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from darkcore import config
from darkserver.lookup import paths
from darkserver.lookup.models import path_key


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


OLD, NEW = ("lookup", "0004_package_identity"), ("lookup", "0005_elf_rows_by_build_id")


def _migrate(target: tuple[str, str]) -> Any:
    """Migrate the test database to ``target``; the models of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_0005_moves_the_rows_to_the_new_layout_and_back() -> None:
    ids = [bytes([n]) * 20 for n in (0xAB, 0xCD)]
    debug_path = f"/usr/lib/debug/.build-id/ab/{ids[0].hex()[2:]}.debug"
    stray = f"/usr/lib/debug/.build-id/cd/{ids[0].hex()[2:]}.debug"
    wanted = {  # (package, build-id, path)
        ("hello-1-1.x86_64", ids[0], "/usr/bin/hello"),
        ("hello-1-1.x86_64", ids[1], "/usr/bin/hello2"),
        ("hello-1-2.x86_64", ids[1], "/usr/bin/hello"),  # the same path text, another build
        ("hello-dbgsym-1-1.x86_64", ids[0], debug_path),
        ("hello-dbgsym-1-1.x86_64", ids[0], debug_path[: -len(".debug")]),
        ("hello-dbgsym-1-1.x86_64", ids[1], stray),  # not its own id: stored as it is
    }
    try:
        apps = _migrate(OLD)
        build_model = apps.get_model("lookup", "Build")
        package_model = apps.get_model("lookup", "Package")
        old_elf = apps.get_model("lookup", "ElfFile")
        packages = {}
        for nvra in sorted({w[0] for w in wanted}):
            name, _version, release = nvra.rsplit(".", 1)[0].rsplit("-", 2)
            build, _ = build_model.objects.get_or_create(name="hello", version="1",
                                                         release=release)
            packages[nvra] = package_model.objects.create(
                build=build, kind="rpm", nvra=nvra, name=name, version="1", release=release,
                arch="x86_64", filename=nvra + ".rpm")
        for nvra, build_id, path in wanted:
            old_elf.objects.create(package=packages[nvra], build_id=build_id, path=path,
                                   path_key=path_key(path), elf_type=3, machine=62, debug=False)

        apps = _migrate(NEW)
        rows = apps.get_model("lookup", "ElfFile").objects.values_list(
            "package__nvra", "build_id", "path__path")
        assert {(n, bytes(b), paths.expand(p, bytes(b))) for n, b, p in rows} == wanted
        stored = apps.get_model("lookup", "Path").objects.values_list("scope", "path")
        assert sorted((bytes(s), p) for s, p in stored) == sorted([
            (b"", paths.TEMPLATES[0]), (b"", paths.TEMPLATES[1]),
            (b"hello", "/usr/bin/hello"), (b"hello", "/usr/bin/hello2"),
            (b"hello-dbgsym", stray)])

        apps = _migrate(OLD)
        rows = apps.get_model("lookup", "ElfFile").objects.values_list(
            "package__nvra", "build_id", "path", "path_key")
        assert {(n, bytes(b), p) for n, b, p, _ in rows} == wanted
        assert all(bytes(k) == path_key(p) for _, _, p, k in rows)
    finally:
        _migrate(NEW)
        call_command("flush", verbosity=0, interactive=False)
