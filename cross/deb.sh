#!/usr/bin/env bash
# Builds the .deb of livechatd for each TARGET from its already built release binary
# and tools (cross/build.sh TARGET, or `cargo build --release -p livechatd -p livechat-tools`
# for `host`), into
# $CARGO_TARGET_DIR/debian/ (default target/debian/), and prints the paths.
#
#   bash .ci/deps-deb.sh                    # once: cargo-deb, pinned
#   bash cross/deb.sh [TARGET...]           # default: the packaged ARM targets
#
# TARGET `host` is the native build (amd64 here). A *-musl target uses the `musl` variant of
# [package.metadata.deb] (static binary: no Depends). Packaging metadata: daemon/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
targets=("$@")
((${#targets[@]})) || targets=("${DEFAULT_TARGETS[@]}")

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/debian"
mkdir -p "$out"
for t in "${targets[@]}"; do
  args=(-p livechatd --no-build --no-strip --output "$out")
  bin="$target_dir/release/livechatd"
  if [ "$t" != host ]; then
    args+=(--target "$t")
    bin="$target_dir/$t/release/livechatd"
  fi
  case "$t" in *-musl*) args+=(--variant musl) ;; esac
  for b in "$bin" "$(dirname "$bin")/lcadmin" "$(dirname "$bin")/lctrace"; do
    if [ ! -x "$b" ]; then
      echo "cross/deb.sh: $b is missing: build it first (cross/build.sh $t)" >&2
      exit 1
    fi
  done
  # --no-strip: the release profile already strips; --no-build: never rebuild here.
  cargo deb "${args[@]}"
done
ls -l "$out"/*.deb
