#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the tests.
#
#   postgres.sh start DIR   starts a server and writes its libpq URI to DIR/dsn
#   postgres.sh stop DIR    stops it and deletes everything it wrote
#
# DIR only holds small state files (dsn, port, the path of the data directory);
# the cluster itself lives in a fresh directory under /tmp, because when we run
# as root the server runs as the `postgres` OS user and must own its data, and
# DIR (inside a build tree owned by root) may not be reachable by that user.
# Durability is switched off (fsync, full page writes): the data is thrown away.
# Both commands are idempotent.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
state=$2

# The highest installed PostgreSQL major version.
pg_bin() {
  local best="" v
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/pg_ctl ]] || continue
    v=$(basename "$(dirname "$d")")
    if [[ -z $best || $v -gt $(basename "$(dirname "$best")") ]]; then
      best=$d
    fi
  done
  if [[ -z $best ]]; then
    echo "postgres.sh: no PostgreSQL server found under /usr/lib/postgresql" \
      "(apt-get install postgresql)" >&2
    exit 1
  fi
  echo "$best"
}

# Runs a command as the user that owns the cluster: `postgres` when we are
# root (the server refuses to run as root), ourselves otherwise.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  # A successful connect means someone listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local p
  if [[ -x /usr/bin/python3 ]]; then
    /usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
    return
  fi
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
  echo "postgres.sh: no free port found" >&2
  exit 1
}

do_stop() {
  local tmp=""
  [[ -f $state/tmpdir ]] && tmp=$(cat "$state/tmpdir")
  if [[ -n $tmp && -d $tmp/data ]]; then
    as_owner "$(pg_bin)/pg_ctl" stop -D "$tmp/data" -m immediate -s \
      >/dev/null 2>&1 || true
  fi
  # Only ever delete what `start` made.
  if [[ -n $tmp && $tmp == /tmp/lotse-pg.* ]]; then
    rm -rf -- "$tmp"
  fi
  rm -f -- "$state/tmpdir" "$state/dsn" "$state/port"
}

do_start() {
  mkdir -p "$state"
  # Already running from an earlier start: keep it.
  if [[ -f $state/tmpdir && -f $state/dsn ]]; then
    local tmp
    tmp=$(cat "$state/tmpdir")
    if [[ -d $tmp/data ]] &&
      as_owner "$(pg_bin)/pg_ctl" status -D "$tmp/data" >/dev/null 2>&1; then
      return 0
    fi
  fi
  do_stop

  local bin tmp port attempt
  bin=$(pg_bin)
  tmp=$(mktemp -d /tmp/lotse-pg.XXXXXX)
  echo "$tmp" >"$state/tmpdir"
  chmod 755 "$tmp"
  mkdir "$tmp/data"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$tmp" "$tmp/data"
  fi
  if ! as_owner "$bin/initdb" -D "$tmp/data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    do_stop
    exit 1
  fi

  # The port is free when we look but may be taken before the server binds
  # it; try a few times.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_owner "$bin/pg_ctl" start -D "$tmp/data" -w -t 30 -s \
      -l "$tmp/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $tmp -c fsync=off \
          -c full_page_writes=off -c synchronous_commit=off \
          -c max_connections=300 -c shared_buffers=32MB" >/dev/null; then
      echo "$port" >"$state/port"
      echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$state/dsn"
      return 0
    fi
  done
  echo "postgres.sh: the server did not start; its log:" >&2
  cat "$tmp/server.log" >&2 || true
  do_stop
  exit 1
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  *) usage ;;
esac
