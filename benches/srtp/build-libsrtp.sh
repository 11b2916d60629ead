#!/usr/bin/env bash
# Builds Debian bookworm's libsrtp2 source (2.5.0) as a shared library on the system's
# OpenSSL (libssl-dev, 3.0), as a second libsrtp baseline for the SRTP benchmark:
#
#   LIBSRTP_SO=$(benches/srtp/build-libsrtp.sh) cargo bench -p livechat-srtp-bench --bench srtp
#
# Debian's own libsrtp2-1 is built on NSS, hence this build. The source comes through
# apt-get with a private deb-src list, so the machine's apt configuration is not touched.
# Idempotent: prints the library's path, building it only if it is missing.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
dir="$top/target/libsrtp-build"
so="$dir/libsrtp-2.5.0/libsrtp2.so"
if [ -f "$so" ]; then
  echo "$so"
  exit 0
fi

dpkg -s libssl-dev >/dev/null 2>&1 || apt-get install -y -qq libssl-dev >&2
mkdir -p "$dir/apt/lists/partial"
echo 'deb-src http://deb.debian.org/debian bookworm main' >"$dir/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$dir/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$dir/apt/lists")
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$dir" && apt-get "${apt_opts[@]}" -qq source --download-only libsrtp2=2.5.0-3 >&2)
tar -xzf "$dir/libsrtp2_2.5.0.orig.tar.gz" -C "$dir"
(
  cd "$dir/libsrtp-2.5.0"
  ./configure --enable-openssl CFLAGS="-O2 -fPIC" >&2
  make -j2 shared_library >&2
)
echo "$so"
