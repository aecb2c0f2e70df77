"""Video for the browser: an rtsp camera's live view and the clips kept as alarm evidence, served by the
dashboard itself through signed, short-lived addresses.

The browser never learns a camera's address or password: it gets HLS from the camera's rolling buffer
(orchard/footage.py), which the cameras service's ffmpeg writes, through these routes (mounted beside the pages
by dashboard/asgi.py):

    /video/hls.js                       the player library (hls.js, dashboard/static/)
    /video/live/<token>/live.m3u8       the camera's playlist (each segment's wall-clock start set from its file)
    /video/live/<token>/<segment>.ts    one segment
    /video/still/<token>                MJPEG for a browser that cannot play HLS (the buffer's frames, or snapshots)
    /video/clip/<token>                 one clip (MP4, byte ranges for seeking)

A page that shows video has already checked who may see it (signin.who, the person's plots); it signs the
address for that camera or clip with `token()`, valid for TOKEN_S and bucketed to the hour, so the page's own
refreshes keep the same address and the player keeps playing; a signed-in person's address also carries their
session's id, and stops working within SESSION_RECHECK_S of the session ending (signing out, disabled). The
routes check the signature, the subject and the expiry (orchard/links.py sign_media), and a bound session at
most every SESSION_RECHECK_S: no database lookup per segment, and a farmer cannot turn the token of their own
camera into another plot's. The key is ORCHARD_NOTIFY__LINK_SECRET (else the kiosk secret, else a
key of this process, which then must be the only dashboard process).
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from orchard.footage import PLAYLIST, Footage
from orchard.links import LinkError, sign_media, verify_media
from orchard.records.accounts import session_id
from orchard.records.snapshots import SnapshotFiles
from orchard.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_S = 2 * 3600  # how long a signed video address lasts (at least TOKEN_S - 1 h, at most TOKEN_S)
STILL_S = 600  # an MJPEG fallback stream ends after this long (the page opens a new one)
# The player stays this many seconds behind the newest segment's end (hls.js liveSyncDuration; in seconds, not
# segments: hls.js counts segments in target durations, and ffmpeg's is 2 s for 1 s segments) and catches up at
# up to 1.5x when it falls more than 4 s further behind.
LIVE_SYNC_S = 2.0
_REFUSED = ("这个视频链接已过期或无效，请回到页面重新打开。\n"
            "This video link has expired or is not valid: open the video again from its page.\n")


@functools.cache
def _settings() -> Settings:
    return Settings()


@functools.cache
def _process_key() -> str:
    return secrets.token_urlsafe(32)


def secret(settings: Settings | None = None) -> str:
    s = settings or _settings()
    for key in (s.notify.link_secret, s.dashboard.kiosk_secret):
        if key is not None:
            return "media:" + key.get_secret_value()  # its own domain: never valid as another kind of link
    return _process_key()


def token(subject: str, now_s: float | None = None, settings: Settings | None = None,
          session: str | None = None) -> str:
    """A signed address part for "live:<camera>" or "clip:<path>", the same for an hour (see TOKEN_S). With the
    viewer's `session` token, the address works only while that session does (signing out, a disabled user or
    the session's end stop it within SESSION_RECHECK_S); without (the wall screen's kiosk link, a message's
    link), until it expires."""
    now_s = time.time() if now_s is None else now_s
    expires = (int(now_s) // 3600 + 1) * 3600 + TOKEN_S - 3600
    bound = f"{subject}|{session_id(session)}" if session else subject
    return sign_media(bound, expires, secret(settings))


SESSION_RECHECK_S = 10.0
_alive: dict[str, tuple[float, bool]] = {}  # session id -> (when checked, still good)


def _session_alive(sid: str) -> bool:
    checked = _alive.get(sid)
    if checked is not None and time.monotonic() - checked[0] < SESSION_RECHECK_S:
        return checked[1]
    from dashboard.cookie import _accounts

    ok = _accounts().alive(sid, time.time_ns())
    if len(_alive) > 10_000:
        _alive.clear()
    _alive[sid] = (time.monotonic(), ok)
    return ok


async def _subject(request: Request, kind: str) -> str | None:
    try:
        subject = verify_media(request.path_params["token"], secret(), time.time())
    except LinkError:
        return None
    subject, _, sid = subject.partition("|")
    if sid and not await run_in_threadpool(_session_alive, sid):
        return None
    prefix = f"{kind}:"
    return subject[len(prefix):] if subject.startswith(prefix) else None


def _refused() -> Response:
    return PlainTextResponse(_REFUSED, status_code=403, headers={"Cache-Control": "no-store"})


def playlist_text(footage: Footage, camera: str) -> str | None:
    """ffmpeg's playlist with each segment's #EXT-X-PROGRAM-DATE-TIME set to when it was really recorded (from
    its file, orchard/footage.py), so the player's delay is the real one; None when there is no buffer."""
    try:
        text = footage.playlist(camera).read_text()
    except FileNotFoundError:
        return None
    starts = {s.name: s.start_ns for s in footage.segments(camera)}
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            continue
        if line and not line.startswith("#"):
            if line not in starts:  # gone between the playlist and the stat: the player skips it
                if out and out[-1].startswith("#EXTINF"):
                    out.pop()
                continue
            at = datetime.fromtimestamp(starts[line] / 1e9, UTC).isoformat(timespec="milliseconds")
            out.append(f"#EXT-X-PROGRAM-DATE-TIME:{at.replace('+00:00', 'Z')}")
        out.append(line)
    return "\n".join(out) + "\n"


async def hls_js(_request: Request) -> Response:
    return FileResponse(STATIC / "hls.light.min.js", media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


async def live(request: Request) -> Response:
    camera = await _subject(request, "live")
    if camera is None:
        return _refused()
    footage, name = Footage(_settings().video_dir), request.path_params["name"]
    try:
        if name == PLAYLIST:
            text = playlist_text(footage, camera)
            if text is None:
                return PlainTextResponse("这台摄像机还没有录像 / no video from this camera yet\n", status_code=404)
            return Response(text, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-store"})
        path = footage.segment(camera, name)
    except ValueError:
        return _refused()
    if path is None:
        return PlainTextResponse("segment gone\n", status_code=404)
    return FileResponse(path, media_type="video/mp2t", headers={"Cache-Control": "private, max-age=300"})


async def clip(request: Request) -> Response:
    rel = await _subject(request, "clip")
    if rel is None or not SnapshotFiles.is_clip(rel):
        return _refused()
    try:
        path = SnapshotFiles(_settings().snapshot_dir).resolve(rel)
    except ValueError:
        return _refused()
    if not path.is_file():
        return PlainTextResponse("这段录像已按保存期限删除 / this clip was deleted by retention\n", status_code=404)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})


def _part(jpeg: bytes) -> bytes:
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"


def segment_jpegs(path: Path, width: int = 640, quality: int = 70) -> list[bytes]:
    """Every frame of one segment as a JPEG of at most `width` pixels (the MJPEG fallback of a recorded camera)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out = []
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            h, w = image.shape[:2]
            if w > width:
                image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
            out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    finally:
        cap.release()
    return out


async def still(request: Request) -> Response:
    """MJPEG (multipart/x-mixed-replace) for a browser without HLS or MSE: a recorded camera's frames, segment by
    segment at their own pace (one segment behind), or else the newest snapshots as they come."""
    camera = await _subject(request, "live")
    if camera is None:
        return _refused()
    footage, files = Footage(_settings().video_dir), SnapshotFiles(_settings().snapshot_dir)

    async def frames() -> AsyncIterator[bytes]:
        last, ends = None, time.monotonic() + STILL_S
        yield b"\r\n"  # the multipart preamble: the headers go out now, not with the first new frame
        while time.monotonic() < ends and not await request.is_disconnected():
            seg = footage.newest(camera)
            if seg is not None and seg.name != last:
                last = seg.name
                jpegs = await run_in_threadpool(segment_jpegs, footage.folder(camera) / seg.name)
                pause = seg.duration_s / max(1, len(jpegs))
                for jpeg in jpegs:
                    yield _part(jpeg)
                    await asyncio.sleep(pause)
                continue
            if seg is None and (ref := files.latest(camera)) is not None and ref.path != last:
                last = ref.path
                if (snapshot := files.read(ref.path)) is not None:
                    yield _part(snapshot)
            await asyncio.sleep(0.2)

    return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame",
                             headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [Route("/video/hls.js", hls_js, methods=["GET"]),
            Route("/video/live/{token}/{name}", live, methods=["GET"]),
            Route("/video/still/{token}", still, methods=["GET"]),
            Route("/video/clip/{token}", clip, methods=["GET"])]


# -- what a page draws ------------------------------------------------------------------------------------------
def player_html(camera: str, texts: dict[str, str], *, now_s: float | None = None, height_px: int = 360,
                session: str | None = None) -> str:
    """A live player for a camera (HLS by hls.js, native HLS on Safari, MJPEG otherwise) that
    shows its delay behind real time. `texts`: "delay" (with {s}), "connecting", "fallback"."""
    t = token(f"live:{camera}", now_s, session=session)
    config = {"src": f"/video/live/{t}/{PLAYLIST}", "still": f"/video/still/{t}", "texts": texts}
    return f"""<div style="font-family:sans-serif">
<video id="v" muted autoplay playsinline controls data-camera="{html.escape(camera)}"
  style="width:100%;max-height:{height_px}px;background:#000;border-radius:6px"></video>
<div id="d" style="font-size:13px;color:#555">{html.escape(texts["connecting"])}</div></div>
<script src="/video/hls.js"></script>
<script>
const cfg = {json.dumps(config, ensure_ascii=False)};
const v = document.getElementById("v"), d = document.getElementById("d");
function fallback() {{
  const img = document.createElement("img");
  img.src = cfg.still; img.style.width = "100%"; v.replaceWith(img); d.textContent = cfg.texts.fallback;
}}
if (window.Hls && Hls.isSupported()) {{
  const hls = new Hls({{liveSyncDuration: {LIVE_SYNC_S}, liveMaxLatencyDuration: {LIVE_SYNC_S + 4},
                        maxLiveSyncPlaybackRate: 1.5, backBufferLength: 30, manifestLoadingMaxRetry: 6}});
  hls.loadSource(cfg.src); hls.attachMedia(v);
  hls.on(Hls.Events.ERROR, (_e, data) => {{ if (data.fatal && data.type === Hls.ErrorTypes.MEDIA_ERROR)
    hls.recoverMediaError(); else if (data.fatal) setTimeout(() => hls.loadSource(cfg.src), 3000); }});
  setInterval(() => {{
    const at = hls.playingDate;
    if (at) {{ const s = Math.max(0, (Date.now() - at.getTime()) / 1000);
      v.dataset.delay = s.toFixed(1); d.textContent = cfg.texts.delay.replace("{{s}}", s.toFixed(1)); }}
  }}, 500);
}} else if (v.canPlayType("application/vnd.apple.mpegurl")) {{ v.src = cfg.src; d.textContent = ""; }}
else fallback();
</script>"""


def clip_html(rel: str, poster: str | None, *, now_s: float | None = None, height_px: int = 300,
              session: str | None = None) -> str:
    """A player for one clip (MP4: every browser plays it); `poster` is a data: or media address, or None."""
    src = f"/video/clip/{token(f'clip:{rel}', now_s, session=session)}"
    poster_attr = f' poster="{html.escape(poster)}"' if poster else ""
    return (f'<video controls playsinline preload="metadata" src="{src}"{poster_attr} '
            f'style="width:100%;max-height:{height_px}px;background:#000;border-radius:6px"></video>')
