#!/usr/bin/env bash
# Installs what the operators' end-to-end tests (tests/tests/admin.rs) need beyond Rust:
# `promtool` from Debian's `prometheus` package, to check the /metrics exposition.
# Idempotent: does nothing when it is already there.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
echo "deps-ops: installing promtool (Debian package prometheus)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
promtool --version | head -1
