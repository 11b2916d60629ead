#!/usr/bin/env bash
# ARM in CI (issue #6): the release daemon cross-built for the Raspberry Pi targets, the
# end-to-end suites run against each under qemu-user, then the .deb packages built and
# inspected. Called from .ci/run after the native tests (it reuses their test binaries and
# the native release daemon, for the amd64 package). cross/README.md explains the targets.
#
#   bash .ci/arm.sh
#
# ARM_TIME_SCALE (default 2): LIVECHAT_TEST_TIME_SCALE for the emulated runs (tests/src/lib.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/livechat-target}"
start=$(date +%s)
step() { printf '\n==> arm: %s (%ss)\n' "$*" "$(($(date +%s) - start))"; }

# Target, then the emulator command line that runs its binaries on this host.
# The packaged ones (cross/README.md): static musl for arm64, glibc for armhf.
TARGETS=(
  "aarch64-unknown-linux-musl|qemu-aarch64-static"
  "armv7-unknown-linux-gnueabihf|qemu-arm-static -L /usr/arm-linux-gnueabihf"
)
SUITES=(identify frames channels chat sessions pipelining floor process)

step "toolchains (cross/setup.sh, cargo-deb)"
bash cross/setup.sh
bash .ci/deps-deb.sh

names=()
for entry in "${TARGETS[@]}"; do names+=("${entry%%|*}"); done
step "release daemons: ${names[*]}"
bash cross/build.sh "${names[@]}"

test_args=()
for s in "${SUITES[@]}"; do test_args+=(--test "$s"); done
for entry in "${TARGETS[@]}"; do
  target="${entry%%|*}"
  runner="${entry#*|}"
  step "end to end against $target under $runner"
  LIVECHATD_BIN="$CARGO_TARGET_DIR/$target/release/livechatd" \
    LIVECHATD_RUNNER="$runner" \
    LIVECHAT_TEST_TIME_SCALE="${ARM_TIME_SCALE:-2}" \
    cargo test --locked -p livechat-tests "${test_args[@]}"
done

step ".deb packages"
if [ ! -e systemd/livechatd.service ]; then
  # cross/deb.sh packages the unit and its example files: without them there is no package
  # to build or inspect, and a green run would hide it.
  echo "arm: systemd/livechatd.service is missing: cannot build the .deb packages" >&2
  exit 1
fi
if [ ! -x "$CARGO_TARGET_DIR/release/livechatd" ] || [ ! -x "$CARGO_TARGET_DIR/release/lcadmin" ]; then
  cargo build --release --locked -p livechatd -p livechat-tools
fi
rm -f "$CARGO_TARGET_DIR"/debian/*.deb
bash cross/deb.sh "${names[@]}" host
LIVECHAT_DEBS="$(ls "$CARGO_TARGET_DIR"/debian/*.deb | tr '\n' ' ')" \
  cargo test --locked -p livechat-tests --test deb -- --include-ignored

step "done"
