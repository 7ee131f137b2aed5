"""The importer's role: chosen in a process of its own, never imposed on a host process."""

from __future__ import annotations

import os
import subprocess
import sys

from darkimport import djangosetup


def test_setup_inside_a_configured_host_leaves_the_role_alone(monkeypatch) -> None:
    monkeypatch.delenv("DARKSERVER_ROLE", raising=False)
    monkeypatch.setattr(djangosetup, "_done", False)
    djangosetup.setup()
    assert "DARKSERVER_ROLE" not in os.environ


def test_a_fresh_process_uses_the_importer_role_and_its_ini(tmp_path) -> None:
    ini = tmp_path / "darkserver.conf"
    ini.write_text(f"[darkserver]\nengine=sqlite\ndatabase={tmp_path}/rw.sqlite3\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DARKSERVER_ROLE", "DARKSERVER_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["DARKSERVER_CONF"] = str(ini)
    code = ("from darkimport import djangosetup; djangosetup.setup(); "
            "from django.db import connection; print(connection.settings_dict['NAME'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == f"{tmp_path}/rw.sqlite3"
