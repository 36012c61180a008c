#!/usr/bin/env bash
# A whole station on this machine: broadcast the sample folder and serve it over HTTP.
# (Until `alluvium demo` exists, this is the station without listeners.)
#   ./station.sh            then, in another terminal:
#   target/release/alluvium schedule http://127.0.0.1:8080/station.rss
set -euo pipefail
cd "$(dirname "$0")"
PORT=${PORT:-8080}
cargo build --release --quiet
bin=target/release/alluvium
"$bin" broadcast examples/station/media --base-url "http://127.0.0.1:$PORT/media" \
    -o examples/station/station.rss --title "Alluvium Sample Radio" --for 24h
"$bin" schedule examples/station/station.rss --next 3
exec "$bin" serve examples/station --listen "127.0.0.1:$PORT"
