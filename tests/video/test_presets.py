"""Camera presets give the vendors' documented addresses; the probe finds what a real camera answers: RTSP from a
real RTSP server at Hikvision's paths, the snapshot with digest auth, and ONVIF with a WS-Security digest."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from bench.servers import RtspServer
from tests.video.camservers import CameraServer, Scene
from video.onvif import Onvif, OnvifError
from video.presets import PRESETS, urls
from video.probe import best, probe


@pytest.mark.parametrize(("vendor", "main", "sub", "snapshot"), [
    ("hikvision", "rtsp://192.168.1.64/Streaming/Channels/101", "rtsp://192.168.1.64/Streaming/Channels/102",
     "http://192.168.1.64/ISAPI/Streaming/channels/101/picture"),
    ("dahua", "rtsp://192.168.1.64/cam/realmonitor?channel=1&subtype=0",
     "rtsp://192.168.1.64/cam/realmonitor?channel=1&subtype=1", "http://192.168.1.64/cgi-bin/snapshot.cgi?channel=1"),
    ("uniview", "rtsp://192.168.1.64/unicast/c1/s0/live", "rtsp://192.168.1.64/unicast/c1/s1/live",
     "http://192.168.1.64/images/snapshot.jpg"),
    ("ezviz", "rtsp://192.168.1.64/h264/ch1/main/av_stream", "rtsp://192.168.1.64/h264/ch1/sub/av_stream", None),
])
def test_presets_give_the_documented_addresses(vendor: str, main: str, sub: str, snapshot: str | None) -> None:
    u = urls(vendor, "192.168.1.64")
    assert (u.main, u.sub, u.snapshot) == (main, sub, snapshot)


def test_channel_and_ports_go_where_the_vendor_puts_them() -> None:
    u = urls("hikvision", "10.0.0.5", channel=3, rtsp_port=8554, http_port=8080)
    assert u.main == "rtsp://10.0.0.5:8554/Streaming/Channels/301"
    assert u.sub == "rtsp://10.0.0.5:8554/Streaming/Channels/302"
    assert u.snapshot == "http://10.0.0.5:8080/ISAPI/Streaming/channels/301/picture"
    assert urls("dahua", "10.0.0.5", channel=2).sub.endswith("channel=2&subtype=1")


def test_every_preset_has_both_streams_and_the_default_user() -> None:
    assert set(PRESETS) == {"hikvision", "dahua", "uniview", "ezviz"}
    assert all(p.user == "admin" and p.main != p.sub for p in PRESETS.values())


@pytest.mark.integration
def test_probe_finds_a_hikvision_camera_and_its_onvif(rtsp: Callable[..., RtspServer]) -> None:
    server = rtsp({"Streaming/Channels/101": "test", "Streaming/Channels/102": "test"}, user="admin",
                  password="Hik#2026pw")
    with CameraServer(Scene(), auth="digest", password="Hik#2026pw") as http:
        http.onvif_rtsp = {"mainStream": server.url("Streaming/Channels/101"),
                           "subStream": server.url("Streaming/Channels/102")}
        found = probe("127.0.0.1", "admin", "Hik#2026pw", rtsp_port=server.port, http_port=http.port, timeout_s=4,
                      vendors=["hikvision", "dahua"])
        by = {p.source: p for p in found}
        assert by["hikvision main"].ok and re.fullmatch(r"h264 640x360 15 fps", by["hikvision main"].detail)
        assert by["hikvision sub"].ok
        assert by["hikvision snapshot"].ok and by["hikvision snapshot"].detail.startswith("JPEG")
        assert not by["dahua main"].ok and "404" in by["dahua main"].detail  # a path the camera does not have
        assert not by["dahua snapshot"].ok
        onvif = [p for p in found if p.source.startswith("onvif")]
        assert [p.ok for p in onvif] == [True, True, True, True]  # each profile's stream and snapshot
        assert "1920x1080" in onvif[0].source and "640x360" in onvif[2].source
        pick = best(found)
        assert pick is not None and pick.url.endswith("/102")  # the sub stream: it fits a village uplink
        assert all("Hik#2026pw" not in p.url + p.detail for p in found)
        wrong = probe("127.0.0.1", "admin", "not-it", rtsp_port=server.port, http_port=http.port, timeout_s=4,
                      vendors=["hikvision"])
        assert not any(p.ok for p in wrong)
        assert "login" in {p.source: p for p in wrong}["hikvision main"].detail
        assert "refused the login" in {p.source: p for p in wrong}["onvif"].detail


@pytest.mark.integration
def test_onvif_logs_in_to_a_camera_whose_clock_is_off(rtsp: Callable[..., RtspServer]) -> None:
    """A camera whose clock is 3 hours behind (never set since a power cut) refuses a UsernameToken stamped with
    our time; the probe reads the camera's clock first and stamps with it."""
    server = rtsp({"Streaming/Channels/101": "test"})
    with CameraServer(Scene(), auth="digest") as http:
        http.onvif_rtsp = {"mainStream": server.url("Streaming/Channels/101")}
        http.clock_offset_s = -3 * 3600
        client = Onvif(f"{http.url}/onvif/device_service", "admin", "s3cret", 3)
        profiles = client.profiles()
        assert -3 * 3600 - 2 <= client.clock_offset_s <= -3 * 3600 + 2
        assert [p.stream_uri for p in profiles] == [server.url("Streaming/Channels/101")]
        client.close()


def test_onvif_says_when_a_device_does_not_speak_it() -> None:
    with CameraServer(Scene()) as http:  # no ONVIF service
        client = Onvif(f"{http.url}/onvif/device_service", "admin", "x", 3)
        with pytest.raises(OnvifError, match="not an ONVIF answer"):
            client.profiles()
        client.close()


@pytest.mark.integration
def test_the_probe_command_suggests_the_line_to_add(rtsp: Callable[..., RtspServer],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import app

    server = rtsp({"Streaming/Channels/101": "test", "Streaming/Channels/102": "test"}, user="admin",
                  password="Cam-77-pass")
    monkeypatch.setenv("CAM_PW", "Cam-77-pass")
    with CameraServer(Scene(), auth="digest", password="Cam-77-pass") as http:
        result = CliRunner().invoke(app, ["admin", "camera", "probe", "127.0.0.1", "--password-env", "CAM_PW",
                                          "--rtsp-port", str(server.port), "--http-port", str(http.port),
                                          "--timeout", "4"])
    assert result.exit_code == 0, result.output
    assert "✔ hikvision sub" in result.output and "✘ dahua main" in result.output
    assert f"--kind rtsp --url 'rtsp://127.0.0.1:{server.port}/Streaming/Channels/102'" in result.output
    assert "Cam-77-pass" not in result.output
