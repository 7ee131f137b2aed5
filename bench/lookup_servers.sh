#!/bin/bash
# Back-to-back: gunicorn gthread 2x2 vs granian 2 workers x 1 blocking thread, same app, same wrk; then debuginfod.
# Usage: bash bench/lookup_servers.sh (needs the databases bench/gen_rows.py makes)
cd "$(dirname "$0")/.."
export DARKSERVER_LOG_LEVEL=ERROR
mkdir -p /tmp/fp
.venv/bin/python - > /tmp/fp/paths.txt <<'PY'
import random, sys
sys.path.insert(0, "bench")
import gen_rows
rng = random.Random(1)
for n in rng.sample(range(1, 10_000_001), 4000):
    print(f"/api/v1/buildid/{gen_rows.build_id(n).hex()}")
PY
W="wrk -t2 -c16 --latency -s bench/lookup_ids.lua"
for db in sqlite:///$PWD/bench/results/lookup-10000000.sqlite3 mysql://root@127.0.0.1:3306/darkserver_bench; do
 for srv in gunicorn granian; do
  export DARKSERVER_DATABASE_URL=$db
  if [ $srv = granian ]; then .venv/bin/granian --interface wsgi --workers 2 --blocking-threads 1 --port 8766 --log-level error darkserver.wsgi:application >/dev/null 2>&1 &
  else DARKSERVER_WORKERS=2 DARKSERVER_THREADS=2 .venv/bin/gunicorn -c conf/gunicorn.conf.py --bind 127.0.0.1:8766 darkserver.wsgi >/dev/null 2>&1 & fi
  pid=$!; sleep 5
  $W -d3s http://127.0.0.1:8766 -- /tmp/fp/paths.txt >/dev/null
  echo "${db%%:*} $srv: $($W -d8s http://127.0.0.1:8766 -- /tmp/fp/paths.txt | grep -E 'Requests/sec|^ +50%|^ +99%' | tr -s ' ' | tr '\n' ' ')"
  kill $pid; wait $pid 2>/dev/null
 done
done
d=$(mktemp -d); debuginfod -d $d/db.sqlite -p 8767 >/dev/null 2>&1 & pid=$!; sleep 3
python3 -c "import random; r=random.Random(3); print(''.join(f'/buildid/{r.randbytes(20).hex()}/debuginfo\n' for _ in range(4000)))" > $d/p.txt
$W -d3s http://127.0.0.1:8767 -- $d/p.txt >/dev/null
echo "debuginfod 404: $($W -d8s http://127.0.0.1:8767 -- $d/p.txt | grep -E 'Requests/sec|^ +50%|^ +99%' | tr -s ' ' | tr '\n' ' ')"
kill $pid; wait $pid 2>/dev/null; rm -rf $d
