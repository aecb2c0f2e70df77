"""A real RTSP server for tests, benchmarks and the demo: Debian's GStreamer RTSP server publishing H.264.

Runs under the system Python (Debian's python3-gi and gir1.2-gst-rtsp-server-1.0), not the project's venv, so it
imports nothing of the project; bench/rtsp.py starts it. Each mount is one shared stream (one encoder, however
many clients), encoded by x264 as an IP camera does (baseline-ish, a keyframe every `gop` frames):

    test            GStreamer's colour bars, scrolling 4 pixels a frame (bright, sharp, always moving)
    feed:PORT       raw BGR frames a producer serves on 127.0.0.1:PORT (bench/rtsp.py FrameFeed), e.g. the
                    demo's synthetic orchard; the frames are stamped as they arrive, so a slower producer is a
                    lower frame rate, as with a struggling camera

    /usr/bin/python3 bench/rtsp_server.py --port 8554 --size 640x360 --fps 15 --gop 15 \\
        --mount cam1=test --mount cam2=feed:9001 [--user admin --password-env RTSP_PASSWORD]

It prints `ready rtsp://127.0.0.1:<port>/` on stdout once it listens, and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def _encoder(fps: int, gop: int, kbps: int) -> str:
    return (f"videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={gop} bitrate={kbps} bframes=0 ! video/x-h264,profile=baseline ! "
            f"rtph264pay name=pay0 pt=96 config-interval=1")


def launch_line(spec: str, width: int, height: int, fps: int, gop: int, kbps: int) -> str:
    caps = f"video/x-raw,width={width},height={height},framerate={fps}/1"
    if spec == "test":
        source = f"videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! {caps}"
    elif spec.startswith("feed:"):
        source = (f"appsrc name=feed is-live=true do-timestamp=true format=time "
                  f"caps=video/x-raw,format=BGR,width={width},height={height},framerate={fps}/1")
    else:
        raise SystemExit(f"unknown mount source {spec!r}: test or feed:PORT")
    return f"( {source} ! {_encoder(fps, gop, kbps)} )"


def feed_media(port: int, frame_bytes: int) -> object:
    """The media-configure handler of a feed mount: a thread reads raw frames from the producer's port and pushes
    each into the pipeline's appsrc as it arrives (stamped then: a slow producer is a low frame rate)."""

    def configure(_factory: object, media: object) -> None:
        src = media.get_element().get_by_name("feed")  # type: ignore[attr-defined]
        stop = threading.Event()
        media.connect("unprepared", lambda *_: stop.set())  # type: ignore[attr-defined]

        def pump() -> None:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError as e:
                print(f"feed {port}: {e}", file=sys.stderr, flush=True)
                src.emit("end-of-stream")
                return
            with sock:
                while not stop.is_set():
                    data = bytearray()
                    while len(data) < frame_bytes:
                        try:
                            chunk = sock.recv(frame_bytes - len(data))
                        except TimeoutError:
                            continue
                        if not chunk:
                            src.emit("end-of-stream")
                            return
                        data += chunk
                    if src.emit("push-buffer", Gst.Buffer.new_wrapped(bytes(data))) != Gst.FlowReturn.OK:
                        return

        threading.Thread(target=pump, daemon=True).start()

    return configure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--size", default="640x360")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--gop", type=int, default=15, help="frames between keyframes (a segment is at least this)")
    p.add_argument("--kbps", type=int, default=600)
    p.add_argument("--mount", action="append", default=[], help="NAME=test or NAME=feed:PORT")
    p.add_argument("--user", default=None, help="require RTSP basic/digest login with this user")
    p.add_argument("--password-env", default="RTSP_PASSWORD", help="environment variable holding the password")
    args = p.parse_args()
    width, height = (int(x) for x in args.size.split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_digest(args.user, os.environ.get(args.password_env, ""), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
    for m in args.mount:
        name, spec = m.split("=", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(spec, width, height, args.fps, args.gop, args.kbps))
        if spec.startswith("feed:"):
            factory.connect("media-configure", feed_media(int(spec.split(":", 1)[1]), width * height * 3))
        factory.set_shared(True)
        factory.set_stop_on_disconnect(True)
        if args.user:
            perms = GstRtspServer.RTSPPermissions()
            perms.add_permission_for_role("viewer", "media.factory.access", True)
            perms.add_permission_for_role("viewer", "media.factory.construct", True)
            factory.set_permissions(perms)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"ready rtsp://127.0.0.1:{args.port}/", flush=True)
    loop.run()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
