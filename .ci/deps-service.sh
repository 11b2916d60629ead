#!/usr/bin/env bash
# Installs what the service checks need beyond Rust: systemd-analyze (package systemd) for
# tests/tests/systemd.rs (`verify` and `security --offline=true` on systemd/livechatd.service).
# Idempotent: does nothing when it is already there.
set -euo pipefail

if command -v systemd-analyze >/dev/null 2>&1; then
    exit 0
fi
echo "deps-service: systemd-analyze is missing; installing systemd" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends systemd >/dev/null
systemd-analyze --version | head -n 1
