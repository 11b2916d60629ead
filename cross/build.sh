#!/usr/bin/env bash
# Builds the release daemon and the operators' tools (lcadmin, lctrace) for each TARGET (default: the two Raspberry Pi targets) and
# prints where each binary is and its size. The default targets are the packaged ones
# (cross/README.md: static musl for arm64, glibc for armhf).
#
#   bash cross/setup.sh                     # once: Rust targets, cross gcc, qemu-user-static
#   bash cross/build.sh [TARGET...]
#
# Binaries: $CARGO_TARGET_DIR (default ./target)/TARGET/release/livechatd, stripped (the
# release profile strips). cross/README.md says which target suits which Pi.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
targets=("$@")
((${#targets[@]})) || targets=("${DEFAULT_TARGETS[@]}")

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
for t in "${targets[@]}"; do
  echo "cross/build.sh: $t" >&2
  cargo build --release --locked -p livechatd -p livechat-tools --target "$t"
done
for t in "${targets[@]}"; do
  for name in livechatd lcadmin lctrace; do
    bin="$target_dir/$t/release/$name"
    printf '%-34s %9d bytes  %s\n' "$t" "$(stat -c %s "$bin")" "$bin"
  done
done
