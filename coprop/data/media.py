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
    ``v0`` s (the first video frame). Decoded, mixed (channel mean) and resampled block by block, so memory is
    the result (38 MB for ten minutes) plus one block. DataError (naming the file) when unusable."""
    path = Path(path)
    container = open_video(path)
    try:
        astream = container.streams.audio[0]
        sr = int(astream.rate or astream.codec_context.sample_rate)
        resampler = BlockResampler(sr, SAMPLE_RATE)
        for chunk in _mono_chunks(path, container, astream, sr, v0, max_seconds):
            if not np.isfinite(chunk).all():
                raise DataError(path, "audio track contains NaN or infinite samples", "re-encode the audio track")
            resampler.push(chunk)
    finally:
        container.close()
    if resampler.received == 0:
        raise DataError(path, "audio track has no decodable samples", AUDIO_HINT)
    return resampler.finish(), sr


def _mono_chunks(path: Path, container, astream, sr: int, v0: float, max_seconds: float | None):
    """float64 mono chunks at ``sr``: the decoded track cut at its stated duration, shifted so that sample 0 is
    at ``v0`` (silence first when the audio starts later), cut at ``max_seconds``."""
    import av

    adur = float(astream.duration * astream.time_base) if astream.duration else None
    # AAC decodes whole 1024-sample packets; the stream duration says where the real audio ends
    left_in = int(round(adur * sr)) if adur else None
    left_out = None if max_seconds is None else int(round(max_seconds * sr))
    to_float = av.AudioResampler(format="fltp", layout=None, rate=None)
    skip = None

    def frames():
        try:
            for frame in container.decode(astream):
                yield frame
            yield None                                   # flush the format converter
        except av.FFmpegError as e:
            raise DataError(path, f"audio track cannot be decoded ({e})",
                            "re-encode the audio with ffmpeg -i in -c:v copy -c:a aac out.mp4") from None

    for frame in frames():
        if skip is None and frame is not None and frame.time is not None:
            skip = int(round((v0 - frame.time) * sr))   # < 0: the audio starts after the first frame
            if skip < 0:
                pad = np.zeros(-skip if left_out is None else min(-skip, left_out))
                left_out = None if left_out is None else left_out - len(pad)
                yield pad
                skip = 0
        for f in to_float.resample(frame):
            a = f.to_ndarray().astype(np.float64).mean(axis=0)      # [channels, n] float32 planar -> mono
            if left_in is not None:
                a, left_in = a[:left_in], left_in - min(left_in, len(a))
            if skip:
                drop = min(skip, len(a))
                a, skip = a[drop:], skip - drop
            if left_out is not None:
                a, left_out = a[:left_out], left_out - min(left_out, len(a))
            if len(a):
                yield a
        if left_out == 0 or left_in == 0:
            return


class BlockResampler:
    """coprop.data.audio.resample_audio over a signal that arrives in chunks, block by block.

    Each block of ``block_s`` seconds is resampled with enough input on both sides for every filter tap, so
    the output equals resampling the whole signal at once (up to floating-point rounding) while only one block
    and the float32 result are held. push(float64 [n]) chunks, then finish() -> float32 [ceil(N * out / in)].
    """

    def __init__(self, sr_in: int, sr_out: int, block_s: float = 30.0):
        import math

        self.sr_in, self.sr_out = int(sr_in), int(sr_out)
        g = math.gcd(self.sr_in, self.sr_out)
        self.up, self.down = self.sr_out // g, self.sr_in // g
        taps = 64 * max(1, self.down // self.up + 1) + 8      # > resample_audio's half-width at every ratio
        self.margin = -(-taps // self.down) * self.down       # a multiple of down: blocks stay phase-aligned
        self.block = max(1, int(block_s * self.sr_in) // self.down) * self.down
        self.buf, self.pending = np.zeros(0), []
        self.buf0 = 0                                         # absolute index of buf[0]
        self.done = 0                                         # input samples whose outputs are out
        self.received = 0
        self.out: list[np.ndarray] = []

    def push(self, chunk: np.ndarray) -> None:
        self.pending.append(np.asarray(chunk, dtype=np.float64))
        self.received += len(chunk)
        while self.received >= self.done + self.block + self.margin:
            self._emit(self.done + self.block, final=False)

    def finish(self) -> np.ndarray:
        if self.received > self.done or not self.out:
            self._emit(self.received, final=True)
        return np.concatenate(self.out).astype(np.float32)

    def _emit(self, end: int, final: bool) -> None:
        if self.pending:
            self.buf, self.pending = np.concatenate([self.buf, *self.pending]), []
        start = max(0, self.done - self.margin)
        stop = self.received if final else end + self.margin
        res = resample_audio(self.buf[start - self.buf0: stop - self.buf0], self.sr_in, self.sr_out)
        first = (self.done - start) * self.up // self.down
        n = -(-end * self.up // self.down) - self.done * self.up // self.down if final else \
            (end - self.done) * self.up // self.down
        self.out.append(res[first:first + n].astype(np.float32))
        self.done = end
        keep = max(0, self.done - self.margin)                # drop input no later block needs
        self.buf, self.buf0 = self.buf[keep - self.buf0:], keep


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
