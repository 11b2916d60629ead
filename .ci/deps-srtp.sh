#!/usr/bin/env bash
# Installs what the SRTP interop tests (core/tests/srtp_interop.rs) and the SRTP benchmark
# (benches/srtp) need: libsrtp, as the PyPI wheel of pylibsrtp, which bundles libsrtp 2.7.0
# built on OpenSSL 3.5 (statically, in pylibsrtp/_binding.abi3.so). Idempotent: when the
# pinned version is already importable it returns at once.
set -euo pipefail

PY=${LIVECHAT_PYTHON:-python3}
VERSION=1.0.0

if "$PY" -c "import pylibsrtp, sys; sys.exit(pylibsrtp.__version__ != '$VERSION')" 2>/dev/null; then
  exit 0
fi

pip_install() {
  "$PY" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "$@" "pylibsrtp==$VERSION"
}
# A Debian-managed Python refuses pip without --break-system-packages (PEP 668).
pip_install || pip_install --break-system-packages

"$PY" -c "import pylibsrtp; print('pylibsrtp', pylibsrtp.__version__, 'installed')"
