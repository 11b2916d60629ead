#!/usr/bin/env bash
# Installs what the browser tests (tests/tests/web.rs, tests/web/) need beyond the e2e
# suite's python3 and `websockets`: Debian's chromium, driven headless over the DevTools
# protocol, and the openssl command (the https test hands chromium the server key's SPKI
# hash). Idempotent: does nothing when they are already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
    exit 0
fi
echo "deps-web: installing chromium and openssl" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium openssl >/dev/null
chromium --version
