"""Video files in and out (PyAV): a user's own mp4 becomes a Clip with AVSBench frame timing.

Frame k is the decoded frame nearest (by presentation time) to (k + 15/16)/fps s, as AVSBench's
preprocessing samples the end of each second; this works for variable frame rate as well. The soundtrack
is mixed to mono by a channel mean (the VGGish recipe) and brought to 16 kHz by coprop's band-limited
resampler.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from coprop.data.audio import SAMPLE_RATE, resample_audio
from coprop.data.clip import Clip
from coprop.errors import DataError

_SLOT = 15.0 / 16.0
_AUDIO_HINT = ("coprop segments the objects that make the sound, so a video needs its soundtrack: keep the "
               "audio when exporting, or add one with ffmpeg -i video.mp4 -i sound.wav -c:v copy out.mp4")


def _open(path: Path):
    import av

    if not path.is_file():
        raise DataError(path, "video file does not exist", "check the path")
    if path.stat().st_size == 0:
        raise DataError(path, "empty video file (0 bytes)", "re-export or re-download the video")
    try:
        return av.open(str(path))
    except Exception as e:  # av raises InvalidDataError, ValueError, ... for damaged or non-media files
        raise DataError(path, f"unreadable video ({e})", "check that it is a playable video (e.g. mp4 with "
                        "h264 + aac); re-encode with ffmpeg -i in -c:v libx264 -c:a aac out.mp4") from None


def read_video(path: str | Path, fps: float = 1.0, max_seconds: float | None = None) -> Clip:
    """Decode ``path`` into a Clip: frames at AVSBench timing, 16 kHz mono waveform, no masks.

    fps          frames per second to keep (AVSBench: 1).
    max_seconds  read only the first ``max_seconds`` of video and audio.
    frame_times holds the presentation times of the frames picked; meta['target_times'] the ideal ones.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames, times, targets, video_fps, t0 = _read_frames(path, fps, max_seconds)
    wav, audio_sr = _read_audio(path, t0, max_seconds=max_seconds)
    meta = {"name": path.stem, "subset": "video", "split": "", "category": "", "mode": "binary",
            "source": str(path), "fps": float(fps), "video_fps": video_fps, "audio_sr": audio_sr,
            "target_times": targets.tolist()}
    return Clip(frames=np.stack(frames), waveform=wav, frame_times=times, meta=meta)


def _read_frames(path: Path, fps: float, max_seconds: float | None):
    """Stream the video once, keeping only the frames nearest to each target time."""
    import av

    container = _open(path)
    try:
        if not container.streams.video:
            raise DataError(path, "has no video track", "pass a video file, not an audio file")
        if not container.streams.audio:
            raise DataError(path, "has no audio track", _AUDIO_HINT)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        video_fps = float(stream.average_rate) if stream.average_rate else None
        picked: list = []        # (frame, time) per resolved target
        t0 = None
        prev = None               # (frame, relative time)
        last_dt = None

        def target(k: int) -> float:
            return (k + _SLOT) / fps

        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if t0 is None:
                    t0 = frame.time
                t = frame.time - t0
                if prev is not None and t > prev[1]:
                    last_dt = t - prev[1]
                k = len(picked)
                while (max_seconds is None or target(k) < max_seconds) and t >= target(k):
                    # the target lies between prev and this frame: keep the nearer one
                    best = prev if prev is not None and target(k) - prev[1] < t - target(k) else (frame, t)
                    picked.append((best[0].to_ndarray(format="rgb24"), best[1]))
                    k += 1
                prev = (frame, t)
                if max_seconds is not None and target(len(picked)) >= max_seconds:
                    break
        except av.FFmpegError as e:
            raise DataError(path, f"video stream cannot be decoded ({e})",
                            "re-encode it with ffmpeg -i in -c:v libx264 -c:a aac out.mp4") from None
        if prev is None:
            raise DataError(path, "video track has no decodable frames", "re-export the video")
        # targets after the last frame's start but before its end still belong to it
        end = prev[1] + (last_dt if last_dt is not None else 1.0 / (video_fps or fps))
        while (max_seconds is None or target(len(picked)) < max_seconds) and target(len(picked)) < end:
            picked.append((prev[0].to_ndarray(format="rgb24"), prev[1]))
    finally:
        container.close()
    if not picked:
        raise DataError(path, f"video is too short: {end:.2f} s, the first frame is taken at "
                        f"{target(0):.3f} s at fps={fps}", "use a longer video or a higher fps")
    frames = [f for f, _ in picked]
    times = np.array([t for _, t in picked], dtype=np.float64)
    targets = np.array([target(k) for k in range(len(picked))], dtype=np.float64)
    return frames, times, targets, video_fps, t0


def _read_audio(path: Path, v0: float, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Whole soundtrack -> float32 mono 16 kHz, aligned so that sample 0 is at ``v0``, the first video frame."""
    import av

    container = _open(path)
    try:
        if not container.streams.audio:
            raise DataError(path, "has no audio track", _AUDIO_HINT)
        astream = container.streams.audio[0]
        sr = int(astream.rate or astream.codec_context.sample_rate)
        adur = float(astream.duration * astream.time_base) if astream.duration else None
        to_float = av.AudioResampler(format="fltp", layout=None, rate=None)
        chunks, first_time = [], None
        limit = None if max_seconds is None else int(np.ceil((max_seconds + 1.0) * sr))
        got = 0
        try:
            for frame in container.decode(astream):
                if first_time is None and frame.time is not None:
                    first_time = frame.time
                for f in to_float.resample(frame):
                    a = f.to_ndarray()                      # [channels, n] float32 planar
                    chunks.append(a.astype(np.float64).mean(axis=0))
                    got += a.shape[1]
                if limit is not None and got >= limit:
                    break
            for f in to_float.resample(None):
                chunks.append(f.to_ndarray().astype(np.float64).mean(axis=0))
        except av.FFmpegError as e:
            raise DataError(path, f"audio track cannot be decoded ({e})",
                            "re-encode the audio with ffmpeg -i in -c:v copy -c:a aac out.mp4") from None
    finally:
        container.close()
    if not chunks:
        raise DataError(path, "audio track has no decodable samples", _AUDIO_HINT)
    wav = np.concatenate(chunks)
    if adur:
        # AAC decodes whole 1024-sample packets; the stream duration says where the real audio ends
        wav = wav[: int(round(adur * sr))]
    shift = int(round(((first_time or 0.0) - v0) * sr))
    wav = np.concatenate([np.zeros(shift), wav]) if shift > 0 else wav[-shift:]
    if max_seconds is not None:
        wav = wav[: int(round(max_seconds * sr))]
    if not np.isfinite(wav).all():
        raise DataError(path, "audio track contains NaN or infinite samples", "re-encode the audio track")
    return resample_audio(wav, sr, SAMPLE_RATE).astype(np.float32), sr


# ---------------------------------------------------------------------------------------------- writing
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _video_codec() -> str:
    from av.codec import Codec

    for name in ("libx264", "h264", "mpeg4"):
        try:
            Codec(name, "w")
            return name
        except Exception:
            continue
    raise DataError(None, "this PyAV build has no h264 or mpeg4 encoder", "install av from PyPI (pip install av)")


def write_video(path: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = SAMPLE_RATE, crf: int = 20) -> Path:
    """Write uint8 [T,H,W,3] frames (h264, else mpeg4; yuv420p) and an optional mono soundtrack (aac).

    Odd frame sizes are padded by one replicated edge row/column (yuv420p needs even sizes). The file is
    written to a temporary name and renamed, so a crash never leaves a half-written video behind.
    """
    import av

    from coprop.io import atomic_path

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(path, f"unsupported video extension {path.suffix!r}", f"use one of {sorted(_FORMATS)}")
    H, W = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")
    codec = _video_codec()
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as out:
            vs = out.add_stream(codec, rate=rate)
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            if codec == "libx264":
                vs.options = {"crf": str(crf)}
            as_ = None
            if audio is not None:
                as_ = out.add_stream("aac", rate=int(sample_rate), layout="mono")
            for t, img in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                vf.pts = t
                vf.time_base = Fraction(1) / rate
                out.mux(vs.encode(vf))
            out.mux(vs.encode(None))
            if as_ is not None:
                wav = np.asarray(audio, dtype=np.float32).reshape(-1)
                step = 1024
                for s in range(0, len(wav), step):
                    chunk = wav[s:s + step]
                    af = av.AudioFrame.from_ndarray(chunk[None, :].copy(), format="fltp", layout="mono")
                    af.sample_rate = int(sample_rate)
                    af.pts = s
                    af.time_base = Fraction(1, int(sample_rate))
                    out.mux(as_.encode(af))
                out.mux(as_.encode(None))
    return path
