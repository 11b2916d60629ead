#!/usr/bin/env bash
# Runs every fuzz target on its committed corpus for SECONDS each (default 20), without a
# sanitizer (stable Rust; the core has no unsafe code), and fails on the first crash,
# hang or out-of-memory. CI runs it briefly as a smoke test; the long runs recorded in
# docs/reliability.md use it with 600 or more.
#   bash fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token rtp_rtcp srtp_unprotect gateway_frames relay_datagram stun_agent sdp_offer dtls_checked admin_actions h264_nals)
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# Shared with the workspace's target directory when CI sets one, so reruns are quick.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
cargo fuzz build -s none --target-dir "$target_dir"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Runs on a scratch copy, so the committed corpus only changes when someone minimizes it.
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/"
  log=$(mktemp)
  if ! cargo fuzz run -s none --target-dir "$target_dir" "$t" "$work" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=512 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED (the input is in fuzz/artifacts/$t/)"
    exit 1
  fi
  echo "fuzz: $t ok: $(grep -E '^#[0-9]+.*DONE' "$log" | tail -1)"
  rm -rf "$log" "$work"
done
