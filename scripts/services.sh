#!/usr/bin/env bash
# Makes sure the services the test suite talks to are up: MariaDB (127.0.0.1:3306) with a read
# replica of its own (127.0.0.1:3307, GTID replication of every database; scripts/mariadb-replica.sh)
# and RabbitMQ (127.0.0.1:5672). Starts whichever is down; exits non-zero when one cannot be
# started, so the suite fails instead of skipping.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # port seconds
  for _ in $(seq 1 "$2"); do up "$1" && return 0; sleep 1; done
  return 1
}

if ! up 3306; then
  echo "services.sh: MariaDB is down; starting it"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  # With a binary log: the replica below replicates from it.
  start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid \
    --exec /usr/sbin/mariadbd -- --log-bin=mysql-bin --server-id=1 --binlog-format=ROW \
    --log-slave-updates=1 --expire-logs-days=1 --max-binlog-size=256M 2>/dev/null ||
    (command -v mysqld_safe >/dev/null && (mysqld_safe >/dev/null 2>&1 &))
  wait_for 3306 60 || { echo "services.sh: MariaDB did not start on 127.0.0.1:3306" >&2; exit 1; }
fi
if ! mysql -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  echo "services.sh: MariaDB answers but root@127.0.0.1 cannot log in" >&2
  exit 1
fi

"$(dirname "$0")/mariadb-replica.sh" 3306 3307 || {
  echo "services.sh: the MariaDB read replica on 127.0.0.1:3307 could not be set up" >&2
  exit 1
}

if ! up 5672; then
  echo "services.sh: RabbitMQ is down; starting it"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for 5672 90 || { echo "services.sh: RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 1; }
  # The port opens before the broker accepts logins; wait until it does.
  for _ in $(seq 1 30); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
echo "services.sh: MariaDB, its replica and RabbitMQ are up"
