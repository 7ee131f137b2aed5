#!/usr/bin/env bash
# The main job on the embedded default: install, build sample packages from C sources with gcc,
# rpmbuild and dpkg-deb, import them into the default SQLite database, serve on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --demo
PORT=${PORT:-8000}
mkdir -p var
.venv/bin/darkserver migrate --noinput
.venv/bin/python -m darkimport.samples var/samples
.venv/bin/darkserver-import var/samples
id=$(.venv/bin/python -m darkimport.samples --print-one-build-id var/samples 2>/dev/null || true)
echo
echo "Darkserver is starting on http://127.0.0.1:$PORT/  (Ctrl-C stops it)"
[ -n "$id" ] && echo "Try: curl http://127.0.0.1:$PORT/buildids/$id"
exec .venv/bin/gunicorn -c conf/gunicorn.conf.py --bind "127.0.0.1:$PORT" darkserver.asgi:application
