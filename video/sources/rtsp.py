"""Kind "rtsp": an IP camera's RTSP stream (Hikvision, Dahua, Uniview, EZVIZ and any ONVIF camera speak it).

ffmpeg keeps the one connection to the camera and copies its H.264 into the rolling buffer (video/recorder.py);
the live view and the clips read that buffer, and so does a snapshot: the first frame (a keyframe, cheap to
decode) of the newest finished segment, stamped with the time the segment began. The stream's own health comes
with it: a stalled stream is no picture (the camera counts as unreachable, with the reason), a low frame rate is
a fault the picture cannot show (`Frame.fault`).
"""

from __future__ import annotations

from orchard.site import CameraConfig, CameraKind
from video.recorder import Recorder, first_frame
from video.sources import CameraUnavailable, Frame, Opening, opens, with_credentials


class RtspSource:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._last: tuple[str, Frame] | None = None

    def snapshot(self) -> Frame:
        rec = self.recorder
        state = rec.state()
        fault = state.fault(rec.cfg)
        if fault == "down":
            raise CameraUnavailable(state.error or "视频流中断 / the stream ended")
        if fault == "stalled":
            raise CameraUnavailable(state.error or (f"视频流停滞 {state.idle_s:.0f} 秒 / the stream stalled: no frame "
                                                    f"for {state.idle_s:.0f} s" if state.idle_s is not None else
                                                    "尚未收到画面 / no frame received yet"))
        seg = rec.footage.newest(rec.camera)
        if seg is None:
            raise CameraUnavailable("尚未录到视频 / no video buffered yet")
        if seg.start_ns < state.started_ns:  # the buffer's newest is from before ffmpeg's last (re)start
            raise CameraUnavailable("等待重新连接后的第一个视频片段 / waiting for the first segment since the stream "
                                    "came back")
        low = (f"帧率下降：{state.fps:g} 帧/秒，应为 {state.declared_fps:g} / the frame rate fell to {state.fps:g} fps "
               f"of {state.declared_fps:g}") if fault == "low_fps" else ""
        if self._last is not None and self._last[0] == seg.name:
            f = self._last[1]
            return Frame(f.time_ns, image=f.image, fault=low, repeat=True)
        image = first_frame(rec.footage.folder(rec.camera) / seg.name)
        if image is None:
            raise CameraUnavailable(f"视频片段无法解码 / a video segment could not be decoded: {seg.name}")
        frame = Frame(seg.start_ns, image=image, fault=low)
        self._last = (seg.name, frame)
        return frame

    def close(self) -> None:
        self.recorder.stop()


@opens(CameraKind.RTSP)
def _rtsp(cam: CameraConfig, how: Opening) -> RtspSource:
    recorder = Recorder(cam.id, with_credentials(cam.url, cam.username, how.password), how.footage, how.cfg)
    recorder.start()
    return RtspSource(recorder)
