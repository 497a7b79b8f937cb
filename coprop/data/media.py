"""Video files in and out (PyAV): a user's own mp4 becomes a Clip with AVSBench frame timing.

Frame k is the decoded frame nearest (by presentation time) to (k + 15/16)/fps s, as AVSBench's
preprocessing samples the end of each second; this works for variable frame rate as well. The soundtrack
is mixed to mono by a channel mean (the VGGish recipe) and brought to 16 kHz by coprop's band-limited
resampler.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from coprop.data.audio import SAMPLE_RATE, resample_audio
from coprop.data.clip import Clip
from coprop.data.video_frames import AUDIO_HINT, frame_zero, iter_frames, open_video
from coprop.errors import DataError


def read_video(path: str | Path, fps: float = 1.0, max_seconds: float | None = None) -> Clip:
    """Decode ``path`` into a Clip: frames at AVSBench timing (turned upright by the display matrix), 16 kHz mono
    waveform, no masks. Holds every picked frame: for long videos stream with video_frames.iter_frames.

    fps          frames per second to keep (AVSBench: 1), > 0.
    max_seconds  read only the first ``max_seconds`` of video and audio; must leave a frame (> 15/16/fps).
    frame_times holds the presentation times of the frames picked; meta['target_times'] the ideal ones;
    meta['rotation'] the display rotation applied (degrees counter-clockwise, 0 when none).
    Raises ValueError for a bad fps/max_seconds, DataError (naming the file) for unusable videos.
    """
    path = Path(path)
    frames, times, rotation = [], [], 0
    for _, rgb, t, rotation in iter_frames(path, fps, max_seconds):
        frames.append(rgb)
        times.append(t)
    t0, video_fps = frame_zero(path)
    wav, audio_sr = read_soundtrack(path, t0, max_seconds=max_seconds)
    targets = (np.arange(len(frames)) + 15.0 / 16.0) / float(fps)
    meta = {"name": path.stem, "subset": "video", "split": "", "category": "", "mode": "binary",
            "source": str(path), "fps": float(fps), "video_fps": video_fps, "audio_sr": audio_sr,
            "target_times": targets.tolist(), "rotation": rotation}
    return Clip(frames=np.stack(frames), waveform=wav, frame_times=np.array(times, dtype=np.float64), meta=meta)


def read_soundtrack(path: str | Path, v0: float, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Whole soundtrack -> (float32 mono 16 kHz, the track's own rate in Hz), aligned so that sample 0 is at
    ``v0`` s (the first video frame). Ten minutes take 38 MB. DataError (naming the file) when unusable."""
    import av

    path = Path(path)
    container = open_video(path)
    try:
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
        raise DataError(path, "audio track has no decodable samples", AUDIO_HINT)
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
def write_video(path: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = SAMPLE_RATE, crf: int = 20) -> Path:
    """Write uint8 [T,H,W,3] frames (h264, else mpeg4; yuv420p) and an optional mono soundtrack (aac).

    Odd frame sizes are padded by one replicated edge row/column (yuv420p needs even sizes). The file is
    written to a temporary name and renamed, so a crash never leaves a half-written video behind. For frames
    that come one at a time use coprop.data.video_writer.VideoWriter.
    """
    from coprop.data.video_writer import VideoWriter, array_soundtrack

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    sound = None if audio is None else array_soundtrack(audio, sample_rate)
    with VideoWriter(path, fps, sound, crf=crf) as w:
        for img in frames:
            w.write(img)
    return Path(path)
