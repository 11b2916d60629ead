#!/usr/bin/env bash
# Installs what the browser tests (tests/tests/web.rs, tests/web/) need beyond the e2e
# suite's python3 and `websockets`: Debian's chromium, driven headless over the DevTools
# protocol. Idempotent: does nothing when it is already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "deps-web: installing chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
chromium --version
