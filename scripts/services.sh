#!/usr/bin/env bash
# Makes sure the services the test suite talks to are up: MariaDB (127.0.0.1:3306) and RabbitMQ
# (127.0.0.1:5672). Starts whichever is down; exits non-zero when one cannot be started, so the
# suite fails instead of skipping.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # port seconds
  for _ in $(seq 1 "$2"); do up "$1" && return 0; sleep 1; done
  return 1
}

if ! up 3306; then
  echo "services.sh: MariaDB is down; starting it"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd 2>/dev/null ||
    (command -v mysqld_safe >/dev/null && (mysqld_safe >/dev/null 2>&1 &))
  wait_for 3306 60 || { echo "services.sh: MariaDB did not start on 127.0.0.1:3306" >&2; exit 1; }
fi
if ! mysql -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  echo "services.sh: MariaDB answers but root@127.0.0.1 cannot log in" >&2
  exit 1
fi

if ! up 5672; then
  echo "services.sh: RabbitMQ is down; starting it"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for 5672 90 || { echo "services.sh: RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 1; }
  # The port opens before the broker accepts logins; wait until it does.
  for _ in $(seq 1 30); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
echo "services.sh: MariaDB and RabbitMQ are up"
