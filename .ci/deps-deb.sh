#!/usr/bin/env bash
# Installs cargo-deb (pinned) for the .deb packages of livechatd (cross/deb.sh, .ci/arm.sh).
# Idempotent: when the pinned version is installed it returns at once.
set -euo pipefail

VERSION=3.8.0

if command -v cargo-deb >/dev/null 2>&1 && cargo-deb --version 2>/dev/null | grep -qw "$VERSION"; then
  exit 0
fi
echo "deps-deb: installing cargo-deb $VERSION" >&2
# Its own target dir, so it neither shares nor invalidates the project's build cache.
CARGO_TARGET_DIR="${TMPDIR:-/tmp}/cargo-deb-build" \
  cargo install cargo-deb --version "$VERSION" --locked --quiet
rm -rf "${TMPDIR:-/tmp}/cargo-deb-build"
cargo-deb --version
