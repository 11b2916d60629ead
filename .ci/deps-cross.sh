#!/usr/bin/env bash
# ARM cross builds and their qemu-user runs (.ci/arm.sh): Rust targets, Debian's cross gcc and
# libc, qemu-user-static. Idempotent (cross/setup.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../cross/setup.sh"
