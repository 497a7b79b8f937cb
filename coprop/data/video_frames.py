"""Video frames one at a time, at AVSBench timing, turned upright as players show them (PyAV).

    plan = plan_frames(path, fps=1.0)             # demux only (no decoding): which times will be picked
    for k, rgb, t, rotation in iter_frames(path, fps=1.0):
        ...                                       # rgb: uint8 [H,W,3] as displayed; t: seconds after frame 0

Frame k is the decoded frame nearest (by presentation time) to (k + 15/16)/fps s (AVSBench's preprocessing
samples the end of each second); this also works for variable frame rate. Phones store portrait video as
landscape pictures plus a display matrix ("rotate 90 degrees clockwise"); every player turns the picture
before showing it, and so does ``iter_frames``: PyAV's ``frame.rotation`` is the matrix's angle in degrees,
counter-clockwise (-90 = turn 90 degrees clockwise), and the picture is turned by it. Mirroring matrices
are not applied (only the angle is read). Only one decoded frame (plus the one picked) is held at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from coprop.errors import DataError

SLOT = 15.0 / 16.0
AUDIO_HINT = ("coprop segments the objects that make the sound, so a video needs its soundtrack: keep the "
              "audio when exporting, or add one with ffmpeg -i video.mp4 -i sound.wav -c:v copy out.mp4")
_REENCODE = "re-encode it with ffmpeg -i in -c:v libx264 -c:a aac out.mp4"


def first_frame_time(fps: float) -> float:
    """Seconds at which frame 0 is taken at ``fps`` (AVSBench timing: 15/16 of the first slot)."""
    return SLOT / float(fps)


def open_video(path: Path, need_audio: bool = True):
    """An open PyAV container of ``path`` with a video track (and an audio track when ``need_audio``)."""
    import av

    if not path.is_file():
        raise DataError(path, "video file does not exist", "check the path")
    if path.stat().st_size == 0:
        raise DataError(path, "empty video file (0 bytes)", "re-export or re-download the video")
    try:
        container = av.open(str(path))
    except Exception as e:  # av raises InvalidDataError, ValueError, ... for damaged or non-media files
        raise DataError(path, f"unreadable video ({e})", "check that it is a playable video (e.g. mp4 with "
                        "h264 + aac); re-encode with ffmpeg -i in -c:v libx264 -c:a aac out.mp4") from None
    if not container.streams.video:
        container.close()
        raise DataError(path, "has no video track", "pass a video file, not an audio file")
    if need_audio and not container.streams.audio:
        container.close()
        raise DataError(path, "has no audio track", AUDIO_HINT)
    return container


def upright(img: np.ndarray, rotation: float) -> np.ndarray:
    """Turn a decoded picture [H,W,C] by its display angle (degrees counter-clockwise, as frame.rotation)."""
    k = int(round(float(rotation or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


class FramePicker:
    """AVSBench frame timing over a stream of (item, time) in presentation order; holds one previous item.

    ``feed(item, t)`` -> the (item, t) pairs that became final; ``finish()`` -> the ones left after the last
    frame (targets after its start but before its end still belong to it). ``done`` says no more can come.
    """

    def __init__(self, fps: float, max_seconds: float | None = None, video_fps: float | None = None):
        self.fps, self.max_seconds, self.video_fps = float(fps), max_seconds, video_fps
        self.count = 0
        self.prev: tuple[object, float] | None = None
        self.last_dt: float | None = None

    def target(self, k: int) -> float:
        return (k + SLOT) / self.fps

    def _wanted(self, k: int) -> bool:
        return self.max_seconds is None or self.target(k) < self.max_seconds

    @property
    def done(self) -> bool:
        return not self._wanted(self.count)

    def feed(self, item, t: float) -> list[tuple[object, float]]:
        out = []
        if self.prev is not None and t > self.prev[1]:
            self.last_dt = t - self.prev[1]
        while self._wanted(self.count) and t >= self.target(self.count):
            tk = self.target(self.count)
            # the target lies between prev and this frame: keep the nearer one
            out.append(self.prev if self.prev is not None and tk - self.prev[1] < t - tk else (item, t))
            self.count += 1
        self.prev = (item, t)
        return out

    def finish(self) -> list[tuple[object, float]]:
        if self.prev is None:
            return []
        end = self.prev[1] + (self.last_dt if self.last_dt is not None else 1.0 / (self.video_fps or self.fps))
        out = []
        while self._wanted(self.count) and self.target(self.count) < end:
            out.append(self.prev)
            self.count += 1
        return out

    def too_short(self, path: Path) -> DataError:
        end = 0.0 if self.prev is None else self.prev[1] + (self.last_dt or 1.0 / (self.video_fps or self.fps))
        return DataError(path, f"video is too short: {end:.2f} s, the first frame is taken at "
                         f"{self.target(0):.3f} s at fps={self.fps:g}", "use a longer video or a higher fps")


def _check_fps(fps: float, max_seconds: float | None) -> None:
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_seconds is not None and not max_seconds > first_frame_time(fps):
        raise ValueError(f"max_seconds={max_seconds:g} leaves no frame: the first frame is taken at "
                         f"{first_frame_time(fps):.3f} s at fps {fps:g}")


@dataclass
class FramePlan:
    """What ``iter_frames`` will pick, known from the packet timestamps alone (no decoding).

    t0: presentation time (s) of the first frame, the zero of every other time; times: float64 [T] picked
    frame times (s after t0); targets: float64 [T] the ideal AVSBench times; width/height: coded size.
    """

    path: Path
    fps: float
    t0: float
    times: np.ndarray
    targets: np.ndarray
    video_fps: float | None
    width: int
    height: int
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.times)


def frame_zero(path: str | Path) -> tuple[float, float | None]:
    """(presentation time in s of the first decodable video frame, the track's average frame rate or None)."""
    import av

    path = Path(path)
    with open_video(path) as c:
        s = c.streams.video[0]
        try:
            for frame in c.decode(s):
                if frame.time is not None:
                    return frame.time, (float(s.average_rate) if s.average_rate else None)
        except av.FFmpegError as e:
            raise DataError(path, f"video stream cannot be decoded ({e})", _REENCODE) from None
    raise DataError(path, "video track has no decodable frames", "re-export the video")


def plan_frames(path: str | Path, fps: float = 1.0, max_seconds: float | None = None) -> FramePlan:
    """Demux the video track (packets only, no decoding) and apply the AVSBench picking rule to its times."""
    import av

    path = Path(path)
    _check_fps(fps, max_seconds)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        video_fps = float(stream.average_rate) if stream.average_rate else None
        tb = float(stream.time_base)
        try:
            pts = [p.pts for p in container.demux(stream) if p.pts is not None and not p.is_discard]
        except av.FFmpegError as e:
            raise DataError(path, f"video stream cannot be read ({e})", _REENCODE) from None
        width, height = stream.codec_context.width, stream.codec_context.height
    finally:
        container.close()
    t0, _ = frame_zero(path)
    times = np.sort(np.asarray(pts, dtype=np.float64)) * tb
    times = times[times >= t0 - 1e-9]          # frames before the first decoded one are never shown
    picker = FramePicker(fps, max_seconds, video_fps)
    picked = []
    for t in times - t0:
        picked += picker.feed(None, float(t))
        if picker.done:
            break
    picked += picker.finish()
    if not picked:
        raise picker.too_short(path)
    return FramePlan(path, float(fps), t0, np.array([t for _, t in picked]),
                     np.array([picker.target(k) for k in range(len(picked))]), video_fps, width, height)


def _rgb(frame, rotate: bool) -> tuple[np.ndarray, int]:
    rot = int(round(frame.rotation or 0)) if rotate else 0
    return upright(frame.to_ndarray(format="rgb24"), rot), rot


def iter_frames(path: str | Path, fps: float = 1.0, max_seconds: float | None = None,
                rotate: bool = True) -> Iterator[tuple[int, np.ndarray, float, int]]:
    """Decode ``path`` once and yield ``(k, rgb, t, rotation)`` for each picked frame, in order.

    rgb: uint8 [H,W,3], turned upright when ``rotate`` (H,W as displayed); t: seconds after the first frame;
    rotation: the display angle applied (degrees counter-clockwise, 0 when none; 0 when ``rotate`` is False).
    Raises DataError (naming the file) for unreadable, frameless or too short videos.
    """
    import av

    path = Path(path)
    _check_fps(fps, max_seconds)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        picker = FramePicker(fps, max_seconds, float(stream.average_rate) if stream.average_rate else None)
        t0 = None
        k = 0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t0 = frame.time if t0 is None else t0
                for picked, t in picker.feed(frame, frame.time - t0):
                    rgb, rot = _rgb(picked, rotate)
                    yield k, rgb, t, rot
                    k += 1
                if picker.done:
                    break
        except av.FFmpegError as e:
            raise DataError(path, f"video stream cannot be decoded ({e})", _REENCODE) from None
        if picker.prev is None:
            raise DataError(path, "video track has no decodable frames", "re-export the video")
        for picked, t in picker.finish():
            rgb, rot = _rgb(picked, rotate)
            yield k, rgb, t, rot
            k += 1
        if k == 0:
            raise picker.too_short(path)
    finally:
        container.close()
