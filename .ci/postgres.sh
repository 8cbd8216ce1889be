#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the fleet tests: `start` prints its URL, `stop` stops it,
# `restart` restarts it (the chaos test's "PostgreSQL restarted under load").
#
#   .ci/postgres.sh start [PORT]    # data in /tmp/livepay-pg-PORT, trust auth on 127.0.0.1 only
#
# The server refuses to run as root, so as root every command runs as the `postgres` user.
# `initdb` and `pg_ctl` come from PATH or /usr/lib/postgresql/*/bin (Debian's postgresql package;
# .ci/run installs it with apt-get where missing).
set -euo pipefail
cmd=${1:?start, stop or restart}
port=${2:-${LIVEPAY_PG_PORT:-54329}}
data=/tmp/livepay-pg-$port
bin=$(dirname "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres "$data"
        as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    # A server left running on this data directory is reused.
    if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w -t 60 \
            -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
    fi
    as_pg psql -h 127.0.0.1 -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'livepay'" | grep -q 1 ||
        as_pg psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE livepay" >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/livepay"
    ;;
stop) as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null ;;
restart) as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 restart >/dev/null ;;
*) echo "usage: $0 start|stop|restart [PORT]" >&2; exit 2 ;;
esac
