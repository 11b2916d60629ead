#!/usr/bin/env bash
# Installs what the camera end-to-end tests (tests/tests/camera.rs) need beyond the WebRTC
# peers (.ci/deps-webrtc.sh): a real RTSP camera, GStreamer's gst-rtsp-server driven from
# Debian's python3 (python3-gi), with x264enc (plugins-ugly) and the RTP payloaders
# (plugins-good). Idempotent: does nothing when they are there.
set -euo pipefail

bash "$(dirname "$0")/deps-webrtc.sh"

probe() {
  /usr/bin/python3 - <<'PY' >/dev/null 2>&1
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
assert Gst.ElementFactory.find("x264enc") and Gst.ElementFactory.find("rtph264pay")
PY
}

if ! probe; then
  echo "deps-camera: installing gst-rtsp-server, python3-gi and the GStreamer plugins" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-ugly \
    gstreamer1.0-plugins-good gstreamer1.0-plugins-base >/dev/null
  probe
fi
