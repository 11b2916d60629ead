#!/usr/bin/python3
"""A real RTSP camera for the tests: GStreamer's gst-rtsp-server (not ours) serving a test
pattern as H.264 (x264enc) at 320x240, 25 frames a second, one key frame every 10 s.

Usage: rtsp_server.py PORT USER PASSWORD [PATH]

Runs under Debian's python3 (python3-gi, gir1.2-gst-rtsp-server-1.0; .ci/deps-camera.sh).
Serves rtsp://127.0.0.1:PORT/PATH (default /cam) with Basic auth for USER:PASSWORD, prints
`ready` once listening and runs until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

FPS = 25
GOP_SECONDS = 10


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    port, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    path = sys.argv[4] if len(sys.argv) == 5 else "/cam"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # One encoder shared by every client, as a camera has; a long GOP, so a late viewer
    # would wait up to 10 s for a key frame of the camera's own.
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball "
        f"! video/x-raw,width=320,height=240,framerate={FPS}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={FPS * GOP_SECONDS} "
        f"bitrate=300 ! video/x-h264,profile=baseline "
        f"! rtph264pay name=pay0 pt=96 config-interval=0 )"
    )
    factory.set_shared(True)
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_role("camera-user")
    perms.add_permission_for_role("camera-user", "media.factory.access", True)
    perms.add_permission_for_role("camera-user", "media.factory.construct", True)
    factory.set_permissions(perms)
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
