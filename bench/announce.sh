#!/usr/bin/env bash
# Announce throughput of one gateway core, per store, measured side by side in one run:
# the gateway pinned to core 0, wrk (and redis-server) on core 1, loopback only.
#   bench/announce.sh [target/release/alluvium] [SECONDS]
# Prints announces/s per store, and memory per 10,000 peers (the gateway's RSS growth in
# memory; Redis's used_memory growth on Redis). Needs wrk, redis-server, taskset, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/alluvium}
SECONDS_=${2:-10}
for p in wrk redis-server taskset curl; do
    command -v "$p" >/dev/null || { echo "announce.sh: $p is required" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

gateway() { # STORE -> sets gw_port, gw_pid
    gw_port=$(free_port)
    taskset -c 0 "$BIN" gateway --listen "127.0.0.1:$gw_port" --store "$1" --rate-limit 0 \
        2>"$work/gateway.log" >/dev/null &
    gw_pid=$!
    pids+=("$gw_pid")
    wait_port "$gw_port"
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# 10,000 peers: 20 contents x 500 ports, each announced once.
fill() {
    local body
    for c in $(seq 1 20); do
        root=$(printf '%064x' $((c * 104729)))
        for p in $(seq 1 500); do
            printf '{"blake3":"%s","port":%d,"peer_id":"fill-%d-%d","have":"partial"}\n' "$root" $((2000 + p)) "$c" "$p"
        done
    done > "$work/fill.jsonl"
    while read -r body; do
        printf 'POST /v1/announce HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
    done < "$work/fill.jsonl" > "$work/fill.http"
    python3 - "$gw_port" "$work/fill.http" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
s.sendall(open(sys.argv[2], "rb").read())
got = bytearray()
while got.count(b"HTTP/1.1 ") < 10000:
    d = s.recv(1 << 16)
    if not d:
        break
    got += d
n = got.count(b"HTTP/1.1 200")
if n != 10000:
    sys.exit(f"only {n} of 10000 announces answered 200")
EOF
}

cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

measure() { # NAME [OTHER_PID]
    local rate g0 g1 o0 o1
    g0=$(cpu_s "$gw_pid"); o0=$(cpu_s "${2:-$gw_pid}")
    rate=$(taskset -c 1 wrk -t1 -c64 -d"${SECONDS_}s" -s bench/announce.lua "http://127.0.0.1:$gw_port" \
        | awk '/Requests\/sec/ {print $2}')
    g1=$(cpu_s "$gw_pid"); o1=$(cpu_s "${2:-$gw_pid}")
    echo "$1: $rate announces/s on one gateway core (gateway busy $(echo "($g1 - $g0) / $SECONDS_ * 100" | bc -l | cut -c1-4) %${2:+, redis-server busy $(echo "($o1 - $o0) / $SECONDS_ * 100" | bc -l | cut -c1-4) %})"
}

# In memory (the SQLite default keeps the tracker in the process).
gateway "sqlite:$work/g.sqlite"
before=$(rss_kib "$gw_pid")
fill
after=$(rss_kib "$gw_pid")
echo "memory: $(( (after - before) * 1024 / 10000 )) bytes a peer, $(( (after - before) )) KiB for 10,000 (gateway RSS $((before / 1024)) -> $((after / 1024)) MiB)"
measure "memory (sqlite store)"
kill "$gw_pid"

# Redis on core 1 beside wrk.
redis_port=$(free_port)
taskset -c 1 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" >/dev/null &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port"
used() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
gateway "redis://127.0.0.1:$redis_port/0"
before=$(used)
fill
after=$(used)
echo "redis: $(( (after - before) / 10000 )) bytes a peer, $(( (after - before) / 1024 )) KiB of Redis for 10,000"
measure "redis" "$redis_pid"
