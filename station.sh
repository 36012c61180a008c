#!/usr/bin/env bash
# A whole station on this machine: the sample folder broadcast and served over HTTP, a gateway,
# and one listener whose stream any player can open, as separate processes (`alluvium demo`
# does it in one).
#   ./station.sh        then open http://127.0.0.1:8000/ in a browser, or: mpv http://127.0.0.1:8000/stream
# Ctrl-C stops everything. PORT (8080), GATEWAY_PORT (7000), STREAM_PORT (8000) move the ports.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${PORT:-8080}
GATEWAY_PORT=${GATEWAY_PORT:-7000}
STREAM_PORT=${STREAM_PORT:-8000}
cargo build --release --quiet
bin=target/release/alluvium
state=$(mktemp -d)
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$state"
}
trap stop EXIT
trap 'exit 130' INT TERM

"$bin" serve examples/station --listen "127.0.0.1:$PORT" >"$state/serve.log" 2>&1 &
pids+=($!)
"$bin" gateway --listen "127.0.0.1:$GATEWAY_PORT" --store "sqlite:$state/gateway.sqlite" \
    --allow-private >"$state/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$GATEWAY_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
"$bin" broadcast examples/station/media --base-url "http://127.0.0.1:$PORT/media" \
    -o examples/station/station.rss --title "Alluvium Sample Radio" --for 24h \
    --gateway "http://127.0.0.1:$GATEWAY_PORT"
"$bin" schedule examples/station/station.rss --next 3
"$bin" listen "http://127.0.0.1:$PORT/station.rss" --gateway "http://127.0.0.1:$GATEWAY_PORT" \
    --peer-listen 127.0.0.1:0 --stream-listen "127.0.0.1:$STREAM_PORT" &
pids+=($!)
echo "on air: open http://127.0.0.1:$STREAM_PORT/ or play http://127.0.0.1:$STREAM_PORT/stream (Ctrl-C stops)"
wait "${pids[@]}"
