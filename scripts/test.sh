#!/usr/bin/env bash
# The whole test suite, on SQLite and on MariaDB. This is the README's test command and what
# .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/services.sh

.venv/bin/ruff check .
.venv/bin/mypy

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== test suite on SQLite"
DARKSERVER_DATABASE_URL="sqlite:///$tmp/darkserver.sqlite3" .venv/bin/pytest -q "$@"

echo "== every test that uses the Django database, again on MariaDB"
# pytest-django creates (and drops) test_darkserver_ci itself. The queue tests and
# tests/test_createtable.py use MariaDB scratch databases of their own in both runs.
DARKSERVER_DATABASE_URL="mysql://root:@127.0.0.1:3306/${DARKSERVER_CI_DB:-darkserver_ci}" \
  .venv/bin/pytest -q -m "not browser" tests/darkserver tests/test_import_cli.py \
  tests/test_migrations.py tests/darkimport/run/test_store.py tests/darkimport/run/test_identity.py \
  tests/darkimport/repo tests/darkimport/koji/test_buildimport.py \
  tests/darkimport/koji/test_backfill.py tests/darkclient "$@"
