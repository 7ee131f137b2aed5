#!/usr/bin/env bash
# A MariaDB read replica of the primary, with GTID replication of every database, for the test
# suite and for trying the web's replica reads on one machine (docs/DEPLOYMENT.md).
#
#   scripts/mariadb-replica.sh [PRIMARY_PORT] [REPLICA_PORT] [DATADIR] [DATABASE]
#
# With DATABASE, only that database is seeded and replicated (--replicate-do-db): the tests make
# throwaway replicas of one scratch database this way, to stop, delay and kill them.
# Defaults: primary 127.0.0.1:3306, replica 127.0.0.1:3307 in /var/lib/mysql-replica, root
# without a password on both, like the primary. What it does, each step only when needed:
#   1. the primary writes a binary log (log_bin is not dynamic: a primary running without one is
#      restarted once with --log-bin, --server-id=1 and row-based events);
#   2. a fresh replica datadir is seeded from a consistent dump of the primary (every database,
#      the GTID position included), then replicates from there with MASTER_USE_GTID=slave_pos;
#   3. a replica whose replication threads are not both running is rebuilt from a new dump.
# Exits non-zero, with the reason, when the replica cannot be brought up.
set -uo pipefail

PRIMARY_PORT=${1:-3306}
REPLICA_PORT=${2:-3307}
DATADIR=${3:-/var/lib/mysql-replica}
DATABASE=${4:-}
BENCH_PATTERN='darkserver\_bench%'
if [ -n "$DATABASE" ]; then
  only=(--replicate-do-db="$DATABASE"); dump_what=(--databases "$DATABASE")
else
  # Every database but the benchmarks' (darkserver_bench, darkserver_bench_1e8, ...: bench/gen_rows.py
  # makes 10^7 to 10^8 rows, 1 to 14 GB, read on the primary only). Copying them would load the
  # machine being measured, and seeding a replica from a 14 GB dump outlasted CI's time limit.
  only=(--replicate-wild-ignore-table="$BENCH_PATTERN.%")
  dump_what=(--databases)
fi
REPL_USER=darkserver_repl
REPL_PASSWORD=darkserver_repl

say() { echo "mariadb-replica.sh: $*"; }
die() { echo "mariadb-replica.sh: $*" >&2; exit 1; }
primary() { mysql -uroot -h127.0.0.1 -P"$PRIMARY_PORT" --batch --skip-column-names "$@"; }
replica() { mysql -uroot -h127.0.0.1 -P"$REPLICA_PORT" --batch --skip-column-names "$@"; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_sql() { # port seconds
  for _ in $(seq 1 "$2"); do
    mysql -uroot -h127.0.0.1 -P"$1" -e 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

primary -e 'SELECT 1' >/dev/null 2>&1 || die "the primary on 127.0.0.1:$PRIMARY_PORT does not answer"

# 1. The primary's binary log.
if [ "$(primary -e 'SELECT @@log_bin')" != 1 ]; then
  [ "$PRIMARY_PORT" = 3306 ] || die "the primary on $PRIMARY_PORT writes no binary log"
  say "the primary writes no binary log; restarting it with --log-bin"
  pid=$(cat /run/mysqld/mysqld.pid 2>/dev/null || pgrep -x mariadbd | head -n1)
  mysqladmin -uroot -h127.0.0.1 -P"$PRIMARY_PORT" shutdown || die "cannot stop the primary"
  for _ in $(seq 1 60); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --background --pidfile /run/mysqld/mysqld.pid \
    --exec /usr/sbin/mariadbd -- --log-bin=mysql-bin --server-id=1 --binlog-format=ROW --log-slave-updates=1 \
    --expire-logs-days=1 --max-binlog-size=256M ||
    die "cannot start the primary with --log-bin"
  wait_sql "$PRIMARY_PORT" 60 || die "the primary did not come back on $PRIMARY_PORT"
  [ "$(primary -e 'SELECT @@log_bin')" = 1 ] || die "the primary still writes no binary log"
fi
# Not written to the binary log: replicas need no replication user of their own.
primary -e "SET sql_log_bin = 0;
            CREATE USER IF NOT EXISTS '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$REPL_PASSWORD';
            GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'127.0.0.1'" ||
  die "cannot create the replication user on the primary"

replicating() {
  local status
  status=$(mysql -uroot -h127.0.0.1 -P"$REPLICA_PORT" -e 'SHOW SLAVE STATUS\G' 2>/dev/null) || return 1
  grep -q 'Slave_IO_Running: Yes' <<<"$status" && grep -q 'Slave_SQL_Running: Yes' <<<"$status"
}

# A replica made with other filters (an older version of this script, or one DATABASE) is rebuilt.
filters_match() {
  local status
  status=$(mysql -uroot -h127.0.0.1 -P"$REPLICA_PORT" -e 'SHOW SLAVE STATUS\G' 2>/dev/null) || return 1
  if [ -n "$DATABASE" ]; then
    grep -qx " *Replicate_Do_DB: $DATABASE" <<<"$status"
  else
    grep -qx " *Replicate_Do_DB: *" <<<"$status" && grep -qx " *Replicate_Ignore_DB: *" <<<"$status" &&
      grep -qxF "Replicate_Wild_Ignore_Table: $BENCH_PATTERN.%" <<<"$(sed 's/^ *//' <<<"$status")"
  fi
}

if up "$REPLICA_PORT" && replicating && filters_match; then
  say "replica on 127.0.0.1:$REPLICA_PORT is replicating"
  exit 0
fi

# 2./3. A new replica from a consistent dump.
if up "$REPLICA_PORT"; then
  say "replica on $REPLICA_PORT is not replicating, or not what is asked for; rebuilding it"
  mysqladmin -uroot -h127.0.0.1 -P"$REPLICA_PORT" shutdown 2>/dev/null
  for _ in $(seq 1 60); do up "$REPLICA_PORT" || break; sleep 1; done
fi
rm -rf "$DATADIR"
mkdir -p "$DATADIR" && chown mysql:mysql "$DATADIR"
mariadb-install-db --no-defaults --user=mysql --datadir="$DATADIR" \
  --auth-root-authentication-method=normal --skip-test-db >"$DATADIR.install.log" 2>&1 ||
  die "mariadb-install-db failed (log: $DATADIR.install.log)"
start-stop-daemon --start --background --pidfile "$DATADIR/mysqld.pid" \
  --exec /usr/sbin/mariadbd -- --no-defaults --user=mysql --datadir="$DATADIR" --port="$REPLICA_PORT" \
  --bind-address=127.0.0.1 --socket="$DATADIR/mysqld.sock" --pid-file="$DATADIR/mysqld.pid" \
  --log-error="$DATADIR/error.log" --server-id=$((REPLICA_PORT)) --skip-name-resolve \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci --read-only=1 \
  --relay-log=relay-bin "${only[@]}" ||
  die "cannot start the replica"
wait_sql "$REPLICA_PORT" 60 || die "the replica did not start on $REPLICA_PORT ($DATADIR/error.log)"

if [ -z "$DATABASE" ]; then
  mapfile -t databases < <(primary -e "SELECT schema_name FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema', 'performance_schema', 'sys')
      AND schema_name NOT LIKE '$BENCH_PATTERN'")
  dump_what+=("${databases[@]}")
fi
say "seeding the replica from a dump of ${dump_what[*]:1}"
# --gtid with --master-data writes the dump's GTID position as SET GLOBAL gtid_slave_pos.
mariadb-dump -uroot -h127.0.0.1 -P"$PRIMARY_PORT" "${dump_what[@]}" --single-transaction \
  --gtid --master-data=1 --routines --events --triggers >"$DATADIR.seed.sql" ||
  die "cannot dump the primary"
replica <"$DATADIR.seed.sql" || die "cannot load the primary's dump into the replica"
# The dump writes the grant tables directly: load them, or replicated GRANTs fail.
replica -e "FLUSH PRIVILEGES" || die "cannot load the replica's grant tables"
rm -f "$DATADIR.seed.sql"
replica -e "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT,
              MASTER_USER='$REPL_USER', MASTER_PASSWORD='$REPL_PASSWORD',
              MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
            START SLAVE" || die "cannot start replication"
for _ in $(seq 1 30); do replicating && break; sleep 1; done
replicating || die "replication did not start: $(mysql -uroot -h127.0.0.1 -P"$REPLICA_PORT" -e 'SHOW SLAVE STATUS\G' | grep -E 'Running|Error')"
say "replica on 127.0.0.1:$REPLICA_PORT replicates ${DATABASE:-every database} of 127.0.0.1:$PRIMARY_PORT"
