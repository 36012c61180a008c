#!/usr/bin/env bash
# Runs every check and test of the project. As root it installs what the end-to-end tests need
# (Debian packages: nginx, apache2, raptor2-utils for rapper, ffmpeg, b3sum, mpg123, mpv, VLC,
# chromium, curl, faketime, redis-server; from npm: playwright-core); otherwise it says what to install. A test whose
# program is missing fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/sbin"

packages=()
command -v nginx >/dev/null || packages+=(nginx)
command -v apache2 >/dev/null || packages+=(apache2)
command -v rapper >/dev/null || packages+=(raptor2-utils)
{ command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; } || packages+=(ffmpeg)
command -v b3sum >/dev/null || packages+=(b3sum)
command -v mpg123 >/dev/null || packages+=(mpg123)
command -v mpv >/dev/null || packages+=(mpv)
command -v cvlc >/dev/null || packages+=(vlc-bin vlc-plugin-base)
command -v chromium >/dev/null || packages+=(chromium)
command -v npm >/dev/null || packages+=(nodejs npm)
command -v curl >/dev/null || packages+=(curl)
command -v faketime >/dev/null || packages+=(faketime)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v kill >/dev/null || packages+=(procps)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "test.sh: missing ${packages[*]}: install them (apt-get install ${packages[*]}) or run as root" >&2
        exit 1
    fi
    echo "test.sh: installing ${packages[*]}" >&2
    apt-get update -qq
    # Keep the packages' own services (nginx, apache2 on port 80) from starting: the tests
    # start their own servers on loopback ports.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# The browser test drives Debian's chromium with playwright-core (no browser download).
if [ ! -d crates/cli/tests/browser/node_modules/playwright-core ]; then
    echo "test.sh: installing playwright-core for the browser test" >&2
    (cd crates/cli/tests/browser && npm ci --no-audit --no-fund --silent)
fi

for component in rustfmt clippy; do
    cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component"
done

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --no-fail-fast
