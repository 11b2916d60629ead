#!/bin/sh
# Reproduces the "Relay" table of docs/performance.md (a few minutes of load after the
# builds; every load is bounded in time, loopback only). Extra arguments go to the bench,
# e.g. `--doc -` to print without rewriting the document, `--secs 2` for longer steps.
set -eu
cd "$(dirname "$0")/../.."
T="${CARGO_TARGET_DIR:-target}"
# The daemon with the counting allocator, for the allocations-per-packet check, kept aside;
# then the ordinary release daemon that is measured (cargo keeps both builds in the target directory).
cargo build --release -p livechatd --features alloc-count
cp "$T"/release/livechatd "$T"/release/livechatd-alloc-count
# Built alone, so the bench's dependency features do not leak into the daemon.
cargo build --release -p livechatd
cargo build --release -p livechat-relay-bench
# The C reference forwarder, searched beside the Rust ones.
"${CC:-cc}" -O2 -Wall -o "$T"/release/livechat-forward-c benches/relay/forward.c
exec "$T"/release/livechat-relay-bench \
    --daemon "$T"/release/livechatd \
    --alloc-daemon "$T"/release/livechatd-alloc-count \
    --c-forwarder "$T"/release/livechat-forward-c \
    "$@"
