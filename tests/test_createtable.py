"""sql/createtable.sql equals the migrated schema, and the whole app works on it on MariaDB:
the importer (read/write) fills it and the web, running as a user granted SELECT only, serves it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import mariadb
from tests.helpers import BIN, get_json, gunicorn, run_cmd

DDL = Path(__file__).resolve().parent.parent / "sql" / "createtable.sql"

pytestmark = pytest.mark.mariadb


def apply_ddl(database: str) -> None:
    conn = mariadb.connect(database)
    cur = conn.cursor()
    # The file is plain statements separated by ';' at line ends; comments are whole lines.
    lines = DDL.read_text().splitlines()
    text = "\n".join(x for x in lines if not x.lstrip().startswith("--"))
    for statement in text.split(";\n"):
        if statement.strip():
            cur.execute(statement)
    conn.commit()
    conn.close()


def test_createtable_matches_migrations() -> None:
    with mariadb.scratch_database("ds_ddl") as ddl_db, mariadb.scratch_database("ds_mig") as mig_db:
        apply_ddl(ddl_db)
        run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"],
                env={"DARKSERVER_DATABASE_URL": mariadb.url(mig_db)})
        ddl, migrated = mariadb.schema(ddl_db), mariadb.schema(mig_db)
        assert [t for t, _ in ddl["tables"]] == [t for t, _ in migrated["tables"]]
        assert {e for _, e in ddl["tables"]} == {"InnoDB"}
        assert ddl["columns"] == migrated["columns"]
        assert ddl["indexes"] == migrated["indexes"]
        assert ddl["foreign_keys"] == migrated["foreign_keys"]
        # The DDL records its migration, so `migrate` finds nothing left to do.
        out = run_cmd([str(BIN / "darkserver"), "migrate", "--noinput", "--plan"],
                      env={"DARKSERVER_DATABASE_URL": mariadb.url(ddl_db)}).stdout
        assert "No planned migration operations" in out


def test_app_on_createtable_schema_with_readonly_web_user(sample_set) -> None:
    with mariadb.scratch_database("ds_app") as db:
        apply_ddl(db)
        imported = run_cmd(
            [str(BIN / "darkserver-import"), "--json", "--jobs", "2", str(sample_set.directory)],
            env={"DARKSERVER_DATABASE_URL": mariadb.url(db)}, check=False,
        )
        assert imported.returncode == 0, imported.stderr
        with mariadb.readonly_user(db) as (user, password):
            # The grant really is read-only.
            ro = mariadb.connect(db, user=user, password=password)
            with pytest.raises(Exception, match="denied"):
                ro.cursor().execute("DELETE FROM lookup_elffile")
            ro.close()
            env = {"DARKSERVER_DATABASE_URL": mariadb.url(db, user, password)}
            with gunicorn(env) as base:
                status, ready = get_json(base + "/api/v1/health/ready")
                assert status == 200 and ready["status"] == "ok"
                for expected in sample_set.expected:
                    status, rows = get_json(f"{base}/buildids/{expected.build_id.upper()}")
                    assert status == 200
                    got = {(r["buildid"], r["elf"], r["rpm"]) for r in rows}
                    assert (expected.build_id, expected.path, expected.nvra) in got
                ids = [e.build_id for e in sample_set.expected]
                status, batch = get_json(base + "/api/v1/buildids", {"buildids": ids})
                assert status == 200
                assert set(batch["results"]) == set(ids) and batch["missing"] == []
