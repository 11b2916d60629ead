#!/usr/bin/env bash
# Installs what the WebRTC end-to-end tests (tests/tests/webrtc.rs, tests/webrtc/) need beyond
# Rust: python3 with aiortc (the aiortc peers), numpy (the tone's frequency) and websockets
# (signaling, also for the DevTools protocol), and Debian's chromium (the second, independent
# WebRTC implementation, headless). Idempotent: does nothing when they are there.
set -euo pipefail

PY=${LIVECHAT_PYTHON:-python3}

bash "$(dirname "$0")/deps-e2e.sh"

if ! "$PY" -c 'import aiortc, numpy, websockets' >/dev/null 2>&1; then
  echo "deps-webrtc: installing the python packages aiortc, numpy and websockets" >&2
  pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@" aiortc numpy websockets; }
  # A Debian-managed Python refuses pip without --break-system-packages (PEP 668).
  pip_install || pip_install --break-system-packages
  "$PY" -c 'import aiortc, numpy; print("deps-webrtc: aiortc", aiortc.__version__, "numpy", numpy.__version__)'
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "deps-webrtc: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  chromium --version
fi
