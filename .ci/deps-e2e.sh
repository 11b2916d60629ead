#!/usr/bin/env bash
# Installs what the end-to-end suite (tests/, package livechat-tests) needs beyond Rust:
# python3 with the `websockets` library for the independent peers in tests/tests/interop.rs
# and tests/tests/media.rs, and pylibsrtp (through deps-srtp.sh) for the libsrtp media peer.
# Idempotent: does nothing when it is already there.
set -euo pipefail

if ! command -v python3 >/dev/null 2>&1; then
    echo "deps-e2e: python3 is missing; installing it" >&2
    apt-get update -qq
    apt-get install -y -qq python3 python3-pip >/dev/null
fi

bash "$(dirname "$0")/deps-srtp.sh"

if python3 -c 'import websockets' >/dev/null 2>&1; then
    exit 0
fi

echo "deps-e2e: installing the python package websockets" >&2
if ! python3 -m pip install --quiet websockets 2>/dev/null; then
    # Debian's python marks itself externally managed.
    python3 -m pip install --quiet --break-system-packages websockets
fi
python3 -c 'import websockets; print("deps-e2e: websockets", websockets.__version__)'
