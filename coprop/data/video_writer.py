"""Write a video one frame at a time (PyAV), with a soundtrack muxed alongside as the frames come.

    with VideoWriter("overlay.mp4", fps=1, audio=source_soundtrack("clip.mp4", start=t0)) as w:
        for frame in frames:              # uint8 [H,W,3]
            w.write(frame)

Video: h264 (libx264, else h264/mpeg4), yuv420p; odd sizes are padded by one replicated edge row/column.
Audio: AAC at the soundtrack's own sample rate and channel layout (the original soundtrack of a video,
re-encoded from its decoded samples so that any source codec works and the cut is sample-exact), or a mono
float array. Audio is muxed up to the time of each video frame written, so nothing piles up in memory.
The file is written under a temporary name and renamed when complete (mode from the umask).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from coprop.errors import DataError

FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_CHUNK = 1024          # samples per audio frame handed to the encoder (AAC's frame size)
_AHEAD_S = 0.5         # audio muxed this far past the last video frame


def video_codec() -> str:
    """The best h264-or-mpeg4 encoder this PyAV build has."""
    from av.codec import Codec

    for name in ("libx264", "h264", "mpeg4"):
        try:
            Codec(name, "w")
            return name
        except Exception:
            continue
    raise DataError(None, "this PyAV build has no h264 or mpeg4 encoder", "install av from PyPI (pip install av)")


@dataclass
class Soundtrack:
    """Audio to mux: ``chunks`` yields float32 planar [channels, n] arrays, contiguous from time 0 of the
    output video, at ``rate`` Hz with the PyAV layout name ``layout`` ('mono', 'stereo', '5.1', ...)."""

    chunks: Iterator[np.ndarray]
    rate: int
    layout: str
    note: str = ""


def array_soundtrack(wav: np.ndarray, rate: int) -> Soundtrack:
    """A mono float waveform (any length, samples from time 0) as a Soundtrack."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    return Soundtrack((wav[None, s:s + _CHUNK] for s in range(0, len(wav), _CHUNK)), int(rate), "mono")


def source_soundtrack(path: str | Path, start: float = 0.0, duration: float | None = None) -> Soundtrack:
    """The first audio track of ``path``, decoded, from ``start`` s (its time base, e.g. the first video frame)
    for ``duration`` s (None: to the end), at its own rate and layout. Audio that begins after ``start`` is
    preceded by silence. A rate or layout the AAC encoder cannot take is converted (48 kHz / stereo) and
    said in ``note``."""
    import av

    from coprop.data.video_frames import open_video

    path = Path(path)
    with open_video(path) as c:
        a = c.streams.audio[0]
        rate = int(a.rate or a.codec_context.sample_rate)
        layout = a.layout.name if a.layout is not None else "stereo"
    notes = []
    if rate not in av.Codec("aac", "w").audio_rates:
        notes.append(f"audio resampled from {rate} Hz to 48000 Hz (AAC cannot store {rate} Hz)")
        rate = 48000
    try:
        av.AudioLayout(layout)
    except Exception:
        notes.append(f"audio layout {layout!r} mixed down to stereo")
        layout = "stereo"
    return Soundtrack(_decoded_chunks(path, rate, layout, start, duration), rate, layout, "; ".join(notes))


def _decoded_chunks(path: Path, rate: int, layout: str, start: float, duration: float | None):
    import av

    from coprop.data.video_frames import open_video

    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    skip = None                    # samples to drop (> 0) or silence to insert (< 0) before the first one
    left = None if duration is None else int(round(duration * rate))
    with open_video(path) as c:
        stream = c.streams.audio[0]
        try:
            for frame in c.decode(stream):
                if skip is None:
                    if frame.time is None:
                        continue
                    skip = int(round((start - frame.time) * rate))
                    if skip < 0:
                        silence = np.zeros((len(av.AudioLayout(layout).channels), -skip), np.float32)
                        skip = 0
                        silence = silence[:, :left] if left is not None else silence
                        left = None if left is None else left - silence.shape[1]
                        yield silence
                for out in resampler.resample(frame):
                    a = out.to_ndarray()
                    if skip:
                        drop = min(skip, a.shape[1])
                        a, skip = a[:, drop:], skip - drop
                    if left is not None:
                        a = a[:, :left]
                        left -= a.shape[1]
                    if a.shape[1]:
                        yield a
                    if left is not None and left <= 0:
                        return
        except av.FFmpegError as e:
            raise DataError(path, f"audio track cannot be decoded ({e})",
                            "re-encode the audio with ffmpeg -i in -c:v copy -c:a aac out.mp4") from None


class VideoWriter:
    """``write(frame)`` uint8 [H,W,3] frames at ``fps`` into ``path`` (.mp4/.m4v/.mov/.mkv); ``close()`` finishes
    the file (``abort()`` or an exception inside ``with`` leaves no file). ``soundtrack``: a Soundtrack or
    None. ``preset``: libx264 speed preset (e.g. 'veryfast' for real-time work)."""

    def __init__(self, path: str | Path, fps: float, soundtrack: Soundtrack | None = None, crf: int = 20,
                 preset: str | None = None):
        self.path = Path(path)
        self.fmt = FORMATS.get(self.path.suffix.lower())
        if self.fmt is None:
            raise DataError(self.path, f"unsupported video extension {self.path.suffix!r}",
                            f"use one of {sorted(FORMATS)}")
        self.rate = Fraction(fps).limit_denominator(1001)
        self.soundtrack, self.crf, self.preset = soundtrack, crf, preset
        self.frames = 0
        self.audio_samples = 0
        self._out = self._vs = self._as = self._atomic = self._tmp = None
        self._size: tuple[int, int] | None = None

    def _open(self, H: int, W: int) -> None:
        import av

        from coprop.io import atomic_path

        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._out = av.open(str(self._tmp), mode="w", format=self.fmt)
        codec = video_codec()
        self._vs = self._out.add_stream(codec, rate=self.rate)
        self._vs.width, self._vs.height, self._vs.pix_fmt = W + W % 2, H + H % 2, "yuv420p"
        if codec == "libx264":
            self._vs.options = {"crf": str(self.crf), **({"preset": self.preset} if self.preset else {})}
        if self.soundtrack is not None:
            self._as = self._out.add_stream("aac", rate=self.soundtrack.rate, layout=self.soundtrack.layout)
        self._size = (H, W)

    def write(self, frame: np.ndarray) -> None:
        import av

        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be uint8 [H,W,3], got {frame.dtype} {frame.shape}")
        H, W = frame.shape[:2]
        if self._out is None:
            self._open(H, W)
        elif (H, W) != self._size:
            raise ValueError(f"frame {self.frames} is {W}x{H}, the video is {self._size[1]}x{self._size[0]}")
        if H % 2 or W % 2:
            frame = np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts, vf.time_base = self.frames, 1 / self.rate
        self._out.mux(self._vs.encode(vf))
        self.frames += 1
        self._mux_audio(float(self.frames / self.rate) + _AHEAD_S)

    def _mux_audio(self, until_s: float | None) -> None:
        import av

        if self._as is None:
            return
        st = self.soundtrack
        while until_s is None or self.audio_samples < until_s * st.rate:
            chunk = next(st.chunks, None)
            if chunk is None:
                self._out.mux(self._as.encode(None))
                self._as = None
                return
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk, dtype=np.float32), format="fltp",
                                            layout=st.layout)
            af.sample_rate, af.pts, af.time_base = st.rate, self.audio_samples, Fraction(1, st.rate)
            self.audio_samples += chunk.shape[1]
            self._out.mux(self._as.encode(af))

    def close(self) -> Path:
        """Flush the encoders, mux the rest of the soundtrack and move the finished file into place."""
        if self._out is None:
            raise ValueError(f"{self.path}: no frame was written")
        self._out.mux(self._vs.encode(None))
        self._mux_audio(None)
        self._out.close()
        self._out = None
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
