"""Hours of kiosk refreshes in minutes: the command center's camera wall against a real `streamlit run`, driven
through Streamlit's websocket protocol, while the cameras' pictures keep changing. The server must not pile up
pictures (old ones are gone from its media store) nor memory: the pictures are made large (1080p under noise,
which does not compress: ~2 MB each), so holding on to the ones sent would grow the server by far more than the
bound."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from bench.dashboard import Session
from bench.servers import free_port
from dashboard.server import DashboardServer
from orchard.models import CameraStatus
from orchard.records.snapshots import SnapshotFiles
from orchard.settings import Settings
from orchard.site import site_for
from orchard.store import open_store
from tests.conftest import KIOSK_SECRET, kiosk_link
from tests.dashboard.conftest import seed
from video.synthetic import SyntheticOrchard

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REFRESHES = 100
MAX_REFRESHES = 400  # on a loaded machine the pictures change less often per refresh: go on until 100 MB went out
MEASURED_FROM = 30  # the first refreshes warm up caches and imports


def distinct(jpeg: bytes, n: int) -> bytes:
    """The same picture with a comment segment (COM, 0xFFFE) after its start marker: other bytes, so a new
    picture to the server, without encoding 2 MB again."""
    note = f"shot {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[2:]


def cameras_keep_shooting(data_dir: Path, store_url: str, stop: threading.Event, sizes: dict[int, int]) -> None:
    """Every camera of the site: a new thumbnail (and frame) and a status point twice a second; the thumbnail is
    the orchard under heavy noise, so its JPEG stays large. sizes: thumbnail bytes by snapshot time. The noisy
    pictures are encoded once, up front: encoding six 1080p frames twice a second would load the machine the
    rest of the suite runs on, and the server's memory does not care how a picture was made."""
    site = site_for(Settings())
    files, store = SnapshotFiles(data_dir / "snapshots"), open_store(store_url)
    noise = np.random.default_rng(7)
    pool: dict[str, list[tuple[bytes, bytes]]] = {}
    for i, cam in enumerate(site.cameras):
        image = SyntheticOrchard(i, 640, 360).render(datetime.now(UTC))
        big = cv2.resize(image, (1920, 1080))
        full = cv2.imencode(".jpg", image)[1].tobytes()
        pool[cam.id] = [(full, cv2.imencode(".jpg", cv2.addWeighted(big, 0.5, noise.integers(0, 255, big.shape,
                                                                                          dtype=np.uint8), 0.5, 0),
                                            [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()) for _ in range(2)]
    shot = 0
    while not stop.wait(0.5):
        now = time.time_ns()
        points = []
        for cam in site.cameras:
            shot += 1
            full, thumb = pool[cam.id][shot % 2]
            thumb = distinct(thumb, shot)
            ref = files.write(cam.id, now, distinct(full, shot), thumb)
            sizes[ref.time_ns] = len(thumb)
            points.append(CameraStatus(site.id, cam.plot, cam.id, now, "ok", now, 5.0, len(full), 100.0, 30.0,
                                       300.0, 0.1, snapshot_ns=ref.time_ns).point())
        store.write(points)
    store.close()


def test_kiosk_camera_wall_keeps_memory_flat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ts.sqlite"
    seed(tmp_path, url, 0, time.time())
    stop, sizes = threading.Event(), dict[int, int]()
    shooter = threading.Thread(target=cameras_keep_shooting, args=(tmp_path, url, stop, sizes), daemon=True)
    shooter.start()
    env = {"ORCHARD_STORE_URL": url, "ORCHARD_DATA_DIR": str(tmp_path), "ORCHARD_DASHBOARD__REFRESH_S": "5",
           "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET}
    try:
        time.sleep(1.5)
        with DashboardServer(env, tmp_path / "dashboard.log", free_port()) as server:
            kiosk = Session(server.port)
            first = kiosk.render({"kiosk": kiosk_link()})
            assert not first.errors and len(first.media) == 6
            seen: set[str] = set(first.media)
            measured: set[str] = set()  # pictures first sent after the RSS baseline
            rss: list[float] = []
            last = first
            done = 0
            for i in range(MAX_REFRESHES):
                if i >= REFRESHES and len(measured) * statistics.median(sizes.values()) / 2**20 > 110:
                    break
                done = i + 1
                last = kiosk.refresh_fragment()
                assert not last.errors and len(last.media) == 6, (i, last.errors, last.media)
                if i > MEASURED_FROM:
                    measured |= set(last.media) - seen
                seen |= set(last.media)
                if i == MEASURED_FROM:
                    rss.append(server.rss_mb())
                time.sleep(0.05)
            rss.append(server.rss_mb())
            sent_mb = len(measured) * statistics.median(sizes.values()) / 2**20
            print(f"\nkiosk camera wall: {done} refreshes, {len(seen)} distinct pictures sent "
                  f"({len(measured)}, {sent_mb:.0f} MB after the baseline), server RSS {rss[0]:.1f} MB after "
                  f"{MEASURED_FROM} -> {rss[-1]:.1f} MB after {done}")
            assert len(seen) >= 5 * 6  # the pictures really changed, many times over
            assert sent_mb > 100  # holding them would show: four times the bound below
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert all(http.get(u).status_code == 200 for u in last.media)
                gone = [u for u in seen - set(last.media) if http.get(u).status_code != 404]
            assert gone == [], f"{len(gone)} old pictures still held by the server"
            assert rss[-1] - rss[0] < 25, (rss, sent_mb)
            kiosk.close()
    finally:
        stop.set()
        shooter.join(5)
