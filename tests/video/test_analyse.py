"""Picture metrics, camera health and motion, table-driven on the synthetic orchard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from orchard.settings import CamerasSettings
from orchard.site import CameraZone
from video.analyse import BadImage, MotionDetector, Picture, _jpeg_size, picture
from video.health import HealthTracker
from video.sources import Frame
from video.synthetic import Intruder, SyntheticOrchard

ORCHARD = SyntheticOrchard(5, 960, 540, intruder_nights=0)  # visitors only where a test puts them
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Sichuan
MIDNIGHT = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
CANOPY_MASK = (((0.0, 0.0), (1.0, 0.0), (1.0, 0.55), (0.0, 0.55)),)
PATH = CameraZone(name="path", polygon=((0.0, 0.58), (1.0, 0.58), (1.0, 1.0), (0.0, 1.0)))
CFG = CamerasSettings()


def frame_at(when: datetime, kind: str = "normal", n: int = 0) -> np.ndarray:
    image = ORCHARD.render(when + timedelta(seconds=5 * n))
    if kind == "black":
        return np.random.default_rng(n).integers(0, 6, image.shape, dtype=np.uint8)
    if kind == "covered":  # a hand or a bag over the lens: dark, a little light through
        return cv2.GaussianBlur(np.full(image.shape, 12, np.uint8), (0, 0), 3)
    if kind == "blurred":
        return cv2.GaussianBlur(image, (0, 0), 9)
    return image


def as_jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


@pytest.mark.parametrize(("when", "kind", "expected"), [
    (NOON, "normal", "ok"),
    (MIDNIGHT, "normal", "ok"),  # the infra-red picture is grey but fine
    (NOON, "black", "dark"),
    (NOON, "covered", "dark"),
    (NOON, "blurred", "blurred"),
    (MIDNIGHT, "blurred", "blurred"),
])
def test_health_of_a_picture_stream(when: datetime, kind: str, expected: str) -> None:
    tracker = HealthTracker(CFG)
    states = [tracker.observed(i, picture(Frame(i, image=frame_at(when, kind, i)))).state for i in range(1, 6)]
    assert states[-1] == expected
    if expected != "ok":  # one bad picture is not yet a broken camera
        assert states[0] == "ok"


def test_frozen_after_identical_snapshots_and_back() -> None:
    tracker = HealthTracker(CFG)
    still = picture(Frame(0, jpeg=as_jpeg(frame_at(NOON))))
    states = [tracker.observed(i, still).state for i in range(1, CFG.frozen_after + 1)]
    assert states[:-1] == ["ok"] * (CFG.frozen_after - 1) and states[-1] == "frozen"
    since = tracker.since_ns
    assert tracker.observed(99, still).since_ns == since  # still the same trouble, since the same moment
    assert tracker.observed(100, picture(Frame(0, image=frame_at(NOON, n=3)))).state == "ok"


def test_unreachable_after_failures_and_back() -> None:
    tracker = HealthTracker(CFG)
    assert tracker.failed(1, "x").state == "ok"
    h = tracker.failed(2, "connection refused")
    assert (h.state, h.since_ns, h.error) == ("unreachable", 2, "connection refused")
    assert tracker.failed(3, "x").since_ns == 2
    assert tracker.observed(4, picture(Frame(4, image=frame_at(NOON)))).state == "ok"


@pytest.mark.parametrize(("width", "height", "thumb_w"), [(1920, 1080, 320), (1280, 720, 320), (640, 360, 320),
                                                          (320, 240, 320), (2560, 1440, 480)])
def test_jpeg_decoded_small_keeps_the_full_frame(width: int, height: int, thumb_w: int) -> None:
    image = cv2.resize(frame_at(NOON), (width, height))
    data = as_jpeg(image)
    assert _jpeg_size(data) == (width, height)
    pic = picture(Frame(0, jpeg=data), thumb_px=thumb_w)
    assert pic.full_jpeg is data  # stored as the camera sent it
    assert (pic.width, pic.height) == (width, height)
    assert pic.thumb.shape[1] == thumb_w and abs(pic.thumb.shape[0] - thumb_w * height / width) <= 1
    assert cv2.imdecode(np.frombuffer(pic.thumb_jpeg, np.uint8), cv2.IMREAD_COLOR).shape == pic.thumb.shape


def test_a_broken_jpeg_is_refused() -> None:
    with pytest.raises(BadImage):
        picture(Frame(0, jpeg=b"\xff\xd8\xff\xe0garbage"))


def _crossing(when: datetime, masks: tuple = CANOPY_MASK, who: str = "person") -> list[tuple[tuple[str, ...], int]]:
    """Background learnt on 20 snapshots, then someone crosses in 8; (zones, objects) per crossing snapshot."""
    md = MotionDetector(masks, (PATH,), 0.4)
    out = []
    for i in range(28):
        someone = Intruder(who, (i - 20) / 8) if i >= 20 else None
        m = md.update(picture(Frame(0, image=ORCHARD.render(when + timedelta(seconds=5 * i), someone,
                                                            wind=1.0))).thumb)
        if i >= 20:
            out.append((m.zones, len(m.boxes)))
        else:
            assert not m.zones
    return out


@pytest.mark.parametrize("who", ["person", "vehicle"])
@pytest.mark.parametrize("when", [NOON, MIDNIGHT])
def test_someone_crossing_the_path_is_seen_in_the_zone(when: datetime, who: str) -> None:
    seen = _crossing(when, who=who)
    assert sum(1 for zones, _ in seen if zones == ("path",)) >= 7


def test_without_the_canopy_mask_the_swaying_leaves_move() -> None:
    md_masked, md_open = MotionDetector(CANOPY_MASK, (), 0.4), MotionDetector((), (), 0.4)
    boxes_masked = boxes_open = 0
    for i in range(30):
        thumb = picture(Frame(0, image=ORCHARD.render(NOON + timedelta(seconds=5 * i), wind=2.0))).thumb
        boxes_masked += len(md_masked.update(thumb).boxes)
        boxes_open += len(md_open.update(thumb).boxes)
    assert boxes_masked == 0
    assert boxes_open > 0


def test_lights_switching_is_not_an_object() -> None:
    md = MotionDetector(CANOPY_MASK, (PATH,), 0.4)
    for i in range(10):
        md.update(picture(Frame(0, image=frame_at(NOON, n=i))).thumb)
    m = md.update(picture(Frame(0, image=frame_at(MIDNIGHT))).thumb)  # the infra-red switch
    assert m.global_change and not m.boxes


def test_picture_same_as() -> None:
    """A frozen camera sends the same frame again, re-encoded: that is the same picture; the next frame of a live
    scene is not. Two separate decodes are compared, never an object with itself."""
    frame = frame_at(NOON, n=1)
    a = picture(Frame(0, image=frame))
    again = picture(Frame(1, image=frame.copy()))
    b = picture(Frame(0, image=frame_at(NOON, n=2)))
    assert again is not a and a.same_as(again)
    assert not a.same_as(b)
    assert isinstance(a, Picture)


def test_the_synthetic_nights_have_visitors_now_and_then_and_only_at_night() -> None:
    orchard = SyntheticOrchard(11, 320, 180, intruder_nights=0.3)
    nights_with_one, hours = 0, set()
    for day in range(60):
        seen = False
        start = datetime(2026, 5, 1, 4, 0, tzinfo=UTC) + timedelta(days=day)  # local noon
        for minute in range(0, 24 * 60, 1):
            when = start + timedelta(minutes=minute)
            if orchard.intruder_at(when) is not None:
                seen = True
                hours.add(when.astimezone(orchard.tz).hour)
        nights_with_one += seen
    assert 8 <= nights_with_one <= 30
    assert hours <= {22, 23, 0, 1, 2, 3, 4}
