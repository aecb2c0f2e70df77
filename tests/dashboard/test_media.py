"""The dashboard's video routes (dashboard/media.py) through Starlette's test client: signed addresses, what
each kind of token opens, the playlist's real recording times, and nothing outside the video folders."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import media
from orchard.links import sign_media
from orchard.records.snapshots import SnapshotFiles
from orchard.settings import Settings

NS = 1_000_000_000
PLAYLIST = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXTINF:1.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:36:28.407+0000
seg-1796409000-0007.ts
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:36:29.407+0000
seg-1796409001-0008.ts
#EXTINF:1.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:36:31.407+0000
seg-1796409003-0009.ts
"""


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORCHARD_NOTIFY__LINK_SECRET", "media-test-secret")
    media._settings.cache_clear()
    cam = tmp_path / "video" / "cam-a"
    cam.mkdir(parents=True)
    (cam / "live.m3u8").write_text(PLAYLIST)
    for name, end_s in (("seg-1796409000-0007.ts", 1_796_409_001), ("seg-1796409001-0008.ts", 1_796_409_003)):
        (cam / name).write_bytes(b"\x47" * 188)
        os.utime(cam / name, ns=(end_s * NS, end_s * NS))  # the third is listed but already gone
    yield TestClient(Starlette(routes=media.routes()))
    media._settings.cache_clear()


def test_the_playlist_carries_real_recording_times(client: TestClient) -> None:
    r = client.get(f"/video/live/{media.token('live:cam-a')}/live.m3u8")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    lines = r.text.splitlines()
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:36:28.407+0000" not in r.text  # ffmpeg's own clock is gone
    # Each segment starts at its file's time less its length: 1796409001 - 1 s and 1796409003 - 2 s.
    assert lines.count("#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:30:00.000Z") == 1
    assert lines.count("#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:30:01.000Z") == 1
    assert "seg-1796409003-0009.ts" not in r.text and r.text.count("#EXTINF") == 2  # a gone segment is left out
    assert lines.index("#EXT-X-PROGRAM-DATE-TIME:2026-12-04T18:30:01.000Z") == lines.index("seg-1796409001-0008.ts") - 1


def test_a_segment_plays_with_its_token_and_nothing_else(client: TestClient) -> None:
    t = media.token("live:cam-a")
    assert client.get(f"/video/live/{t}/seg-1796409000-0007.ts").status_code == 200
    assert client.get(f"/video/live/{t}/..%2F..%2Frecords.sqlite").status_code in (403, 404)
    assert client.get(f"/video/live/{t}/seg-1796409003-0009.ts").status_code == 404  # gone
    other = media.token("live:cam-b")  # another camera's token opens only that camera
    assert client.get(f"/video/live/{other}/seg-1796409000-0007.ts").status_code == 404
    assert client.get("/video/live/not.a-token/live.m3u8").status_code == 403
    clip_token = media.token("clip:cam-a/2026-12-04/1796409000000.mp4")
    assert client.get(f"/video/live/{clip_token}/live.m3u8").status_code == 403  # a clip's token is no live one
    foreign = sign_media("live:cam-a", 4_000_000_000, "another-key")
    assert client.get(f"/video/live/{foreign}/live.m3u8").status_code == 403


def test_an_expired_token_is_refused_in_both_languages(client: TestClient) -> None:
    old = sign_media("live:cam-a", 1_000, media.secret(Settings()))
    r = client.get(f"/video/live/{old}/live.m3u8")
    assert r.status_code == 403 and "已过期" in r.text and "expired" in r.text


def test_clips_stay_inside_the_snapshot_folder(client: TestClient, tmp_path: Path) -> None:
    files = SnapshotFiles(tmp_path / "snapshots")
    ref = files.clip_ref("cam-a", 1_796_409_000 * NS)
    (files.root / ref.path).parent.mkdir(parents=True)
    (files.root / ref.path).write_bytes(b"\x00" * 5000)
    r = client.get(f"/video/clip/{media.token(f'clip:{ref.path}')}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and len(r.content) == 100  # seeking works
    (tmp_path / "secret.mp4").write_bytes(b"no")
    assert client.get(f"/video/clip/{media.token('clip:../secret.mp4')}").status_code == 403
    assert client.get(f"/video/clip/{media.token('clip:cam-a/x.jpg')}").status_code == 403  # clips only


def test_a_token_stays_the_same_within_the_hour_and_lasts_at_least_an_hour() -> None:
    s = Settings(notify={"link_secret": "k"})  # type: ignore[arg-type]
    start = 1_796_400_000  # on the hour
    assert media.token("live:c", start + 10, s) == media.token("live:c", start + 3500, s)
    assert media.token("live:c", start + 10, s) != media.token("live:c", start + 3700, s)
    from orchard.links import LinkError, verify_media

    t = media.token("live:c", start + 3599, s)
    assert verify_media(t, media.secret(s), start + 3599 + 3600) == "live:c"  # still good an hour later
    with pytest.raises(LinkError):
        verify_media(t, media.secret(s), start + media.TOKEN_S + 1)


def test_a_media_token_is_no_message_link() -> None:
    """Signed under its own key (derived from the link secret): it opens no receipt page."""
    from orchard.links import LinkError, verify

    s = Settings(notify={"link_secret": "k"})  # type: ignore[arg-type]
    with pytest.raises(LinkError):
        verify(media.token("live:7", 1_796_400_000, s), "k", 1_796_400_000)


@pytest.mark.integration
def test_the_mjpeg_fallback_streams_the_recorded_frames(client: TestClient, tmp_path: Path) -> None:
    """A browser without HLS gets the buffer's own frames as MJPEG, not a snapshot every few seconds."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed (Debian package ffmpeg)")
    folder = tmp_path / "video" / "cam-m"
    folder.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=10", "-t", "2.5",
                    "-c:v", "libx264", "-g", "10", "-f", "hls", "-hls_time", "1", "-hls_segment_filename",
                    str(folder / "seg-1796409000-%04d.ts"), str(folder / "live.m3u8")], check=True)
    parts: list[bytes] = []
    with client.stream("GET", f"/video/still/{media.token('live:cam-m')}") as r:
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        buffer = b""
        for chunk in r.iter_bytes():
            buffer += chunk
            while (start := buffer.find(b"\xff\xd8")) >= 0 and (end := buffer.find(b"\xff\xd9", start)) >= 0:
                parts.append(buffer[start:end + 2])
                buffer = buffer[end + 2:]
            if len(parts) >= 5:
                break
    assert len(parts) >= 5 and len(set(parts)) >= 4  # frames of a moving picture, one after another


def test_a_signed_in_viewers_video_ends_with_their_session(client: TestClient, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing out (or being disabled) stops the video addresses the person's pages made, within the recheck."""
    from dashboard import cookie
    from orchard.records import Records
    from orchard.records.accounts import Accounts
    from orchard.records.people import People, User

    monkeypatch.setattr(media, "SESSION_RECHECK_S", 0.0)
    cookie._settings.cache_clear()
    cookie._accounts.cache_clear()
    settings = Settings(data_dir=tmp_path)
    records = Records.open(settings)
    People(records).upsert(User("wang", "王建国", "farmer"))
    accounts = Accounts(records, settings.dashboard)
    session = accounts.open_session("wang", time.time_ns()).token
    bound = media.token("live:cam-a", session=session)
    unbound = media.token("live:cam-a")
    assert bound != unbound
    assert client.get(f"/video/live/{bound}/live.m3u8").status_code == 200
    accounts.logout(session)
    assert client.get(f"/video/live/{bound}/live.m3u8").status_code == 403
    assert client.get(f"/video/live/{unbound}/live.m3u8").status_code == 200  # a kiosk's: until it expires
    cookie._settings.cache_clear()
    cookie._accounts.cache_clear()
