#!/usr/bin/env bash
# A throwaway cluster to try "several daemons on one database": a private
# PostgreSQL server (unix socket only, in a temporary directory) and three
# crisis daemons on 127.0.0.1:$BASE_PORT+1..3, each with its own state_dir,
# all sharing the database and one journal key.
#
#   examples/cluster/run.sh           start everything, print how to drive it, stop on Ctrl-C
#   examples/cluster/run.sh --check   start, walk a failover by itself, stop (exit 0 if it held)
#
# Environment: CRISIS_BIN (default target/debug/crisis, built if missing),
# BASE_PORT (default 18700), KEEP=1 keeps the directory after stopping.
# Needs the PostgreSQL server binaries (Debian: postgresql-15); when run as
# root, the server runs as the `postgres` user, which must exist.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASE_PORT=${BASE_PORT:-18700}
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1

pgbin() {
    if [[ -x /usr/lib/postgresql/15/bin/$1 ]]; then echo "/usr/lib/postgresql/15/bin/$1"; else command -v "$1" || true; fi
}
INITDB=$(pgbin initdb)
PG_CTL=$(pgbin pg_ctl)
if [[ -z "$INITDB" || -z "$PG_CTL" ]]; then
    echo "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/15/bin or on PATH; install postgresql-15" >&2
    exit 1
fi
CRISIS=${CRISIS_BIN:-$ROOT/target/debug/crisis}
if [[ ! -x "$CRISIS" ]]; then
    (cd "$ROOT" && cargo build -q --bin crisis)
fi

DIR=$(mktemp -d /tmp/crisis-cluster.XXXXXX)
chmod 755 "$DIR"
PGDIR=$DIR/pg
mkdir -p "$PGDIR"
AS_OWNER=()
if [[ $(id -u) == 0 ]]; then
    # The server refuses to run as root.
    chown postgres "$PGDIR"
    AS_OWNER=(runuser -u postgres --)
fi

PIDS=()
stop() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    "${AS_OWNER[@]}" "$PG_CTL" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap stop EXIT

echo "== PostgreSQL in $PGDIR (unix socket only)"
"${AS_OWNER[@]}" "$INITDB" -D "$PGDIR/data" -A trust -U postgres -E UTF8 --locale=C >"$DIR/initdb.log"
"${AS_OWNER[@]}" "$PG_CTL" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
    -o "-k $PGDIR -c listen_addresses=''" start >/dev/null
"${AS_OWNER[@]}" "$(dirname "$PG_CTL")/createdb" -h "$PGDIR" -U postgres crisis

# The URL is a secret: a 0600 file the configs name, never a config value.
umask 077
echo "host=$PGDIR user=postgres dbname=crisis" >"$DIR/pg-url"
# One journal key for every node: the chain is one chain, whoever appends.
head -c 32 /dev/urandom >"$DIR/journal.key"

for n in 1 2 3; do
    node=$DIR/node$n
    mkdir -p "$node/state"
    cp "$DIR/journal.key" "$node/state/journal.key"
    cat >"$node/crisis.toml" <<EOF
state_dir = "state"
listen = "127.0.0.1:$((BASE_PORT + n))"
playbooks = "$ROOT/playbooks"
roster = "$ROOT/examples/roster.toml"
customers = "$ROOT/examples/customers.csv"

[store]
url = "secret:pg"

[secrets.pg]
file = "$DIR/pg-url"

[targets.superiors]
plugin = "log"
[targets.departments]
plugin = "log"
[targets.customers]
plugin = "log"
[targets.regulator]
plugin = "log"
[targets.pr]
plugin = "log"
[targets.oncall]
plugin = "log"
EOF
done

ready() { curl -fs "http://127.0.0.1:$((BASE_PORT + $1))/readyz" >/dev/null 2>&1; }
start_node() {
    local n=$1
    (cd "$DIR/node$n" && exec "$CRISIS" --config crisis.toml daemon >>daemon.log 2>&1) &
    PIDS[$n]=$!
    for _ in $(seq 1 600); do
        ready "$n" && return 0
        kill -0 "${PIDS[$n]}" 2>/dev/null || { echo "node $n exited; its log:" >&2; cat "$DIR/node$n/daemon.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "node $n did not become ready in 60 s; see $DIR/node$n/daemon.log" >&2
    exit 1
}
for n in 1 2 3; do
    start_node "$n"
    echo "== node $n: http://127.0.0.1:$((BASE_PORT + n)), pid ${PIDS[$n]}, state $DIR/node$n/state"
done

node() { local n=$1; shift; "$CRISIS" --config "$DIR/node$n/crisis.toml" "$@"; }

if [[ $CHECK == 0 ]]; then
    cat <<EOF

Three daemons share one journal. In another terminal:

  node() { n=\$1; shift; $CRISIS --config $DIR/node\$n/crisis.toml "\$@"; }
  node 1 trigger service-outage --title "Checkout failing" --scope "EU" \\
      --field nature="HTTP 500" --field consequences="orders lost" --label service=checkout --label region=eu
  node 2 incident list                    # the same incident, read on another node
  kill -9 ${PIDS[1]}                             # node 1 dies
  node 3 ack INC-1 --as li-wei            # the others carry on
  node 2 verify                           # one chain, one key

Logs: $DIR/node{1,2,3}/daemon.log. Ctrl-C stops everything and removes $DIR.
EOF
    wait
    exit 0
fi

echo "== failover walk"
id=$(node 1 --json trigger service-outage --title "Checkout failing" --scope EU \
    --field nature="HTTP 500" --field consequences="orders lost" --label service=checkout --label region=eu |
    sed -n 's/.*"id": "\(INC-[0-9]*\)".*/\1/p' | head -1)
echo "triggered $id on node 1"
node 2 incident show "$id" >/dev/null && echo "node 2 reads $id"
kill -9 "${PIDS[1]}"
wait "${PIDS[1]}" 2>/dev/null || true
unset 'PIDS[1]'
echo "node 1 killed (SIGKILL)"
t0=$(date +%s%N)
second=$(node 2 --json trigger service-outage --title "Refunds failing" --scope EU \
    --field nature="refund API down" --field consequences="refunds late" --label service=refunds --label region=eu |
    sed -n 's/.*"id": "\(INC-[0-9]*\)".*/\1/p' | head -1)
echo "node 2 took trigger $second $(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill"
node 3 ack "$id" --as li-wei >/dev/null && echo "node 3 acknowledged $id"
node 3 incident list
node 2 verify
start_node 1
echo "node 1 restarted on the same database"
node 1 verify
echo "== the failover walk held"
