"""`orchard bench video` end to end, small: real RTSP streams, bare ffmpeg and the recorder, the live delay."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.servers import ServerMissing
from bench.video import coded, read_code, run_bench
from tests.conftest import _missing as missing

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("n", [0, 1, 2, 255, 4097, 65535])
def test_the_frame_number_reads_back(n: int) -> None:
    assert read_code(coded(n)) == n


def test_bench_video_reports_every_figure(tmp_path: Path) -> None:
    try:
        result = run_bench(cameras=2, seconds=3, repeat=1, delay_seconds=6, work_dir=tmp_path)
    except ServerMissing as e:
        missing(e)  # skipped here, failed in CI
    assert result["bare_ffmpeg_core_pct_per_camera"] > 0  # type: ignore[operator]
    assert result["ours_core_pct_per_camera"] > 0  # type: ignore[operator]
    assert result["segments_timed"] >= 3  # type: ignore[operator]
    first, last = result["frame_wait_s_first_of_segment_median"], result["frame_wait_s_last_of_segment_median"]
    # A segment's first frame waits for the whole segment (1 s keyframe interval), its last only for the cut.
    assert 0 <= last < first < 3  # type: ignore[operator]
    assert 0.6 < first - last < 1.4  # type: ignore[operator]  # about one segment apart
