#!/usr/bin/env bash
# Installs what the ARM cross builds and their qemu-user test runs need. Idempotent: a second
# run changes nothing and does not touch the network (apt-get update runs only when a package
# is missing; rustup target add is a no-op for an installed target).
#
#   bash cross/setup.sh
#
# Rust targets: the glibc ones (cross gcc as the linker, Debian's cross libc to link against)
# and the static musl ones (rust-lld and Rust's self-contained musl; no cross gcc needed).
set -euo pipefail

TARGETS=(
  aarch64-unknown-linux-gnu
  armv7-unknown-linux-gnueabihf
  aarch64-unknown-linux-musl
)
PACKAGES=(
  gcc-aarch64-linux-gnu
  gcc-arm-linux-gnueabihf
  libc6-dev-arm64-cross
  libc6-dev-armhf-cross
  qemu-user-static
)

installed=$(rustup target list --installed)
for t in "${TARGETS[@]}"; do
  if ! grep -qx "$t" <<<"$installed"; then
    rustup target add "$t"
  fi
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "cross/setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
