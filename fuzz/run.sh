#!/usr/bin/env bash
# Runs every fuzz target on its corpus for SECONDS each (default 20) with no sanitizer
# (stable Rust) and fails on the first crash. Used by CI as a smoke run and locally for
# the long runs recorded in docs/reliability.md.
#   bash fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token rtp_rtcp srtp_unprotect gateway_frames relay_datagram)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
cargo fuzz build -s none "${targets[@]/#/}" >/dev/null 2>&1 || cargo fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if ! cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: $t FAILED"
    exit 1
  fi
  echo "fuzz: $t ok: $(grep -E '^#[0-9]+.*DONE' "$log" | tail -1)"
  rm -f "$log"
done
