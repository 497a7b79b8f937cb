"""read_video on the real fixture clips (incl. variable frame rate) and a write/read round trip."""
from __future__ import annotations

import av
import numpy as np
import pytest

from coprop.data.audio import resample_audio
from coprop.data.media import read_video, write_video
from coprop.errors import DataError


def _all_frames(path):
    """Every decoded frame (time, rgb) with PyAV directly, to check the picks independently."""
    with av.open(str(path)) as c:
        out = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    t0 = out[0][0]
    return [(t - t0, img) for t, img in out]


def _reference_audio(path):
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        sr = s.rate
        a = np.concatenate([f.to_ndarray() for f in c.decode(s)], axis=1).astype(np.float64)
    return a.mean(0), sr


def test_real_clips_frames_audio_and_timing(real_clips):
    assert len(real_clips) == 4
    seen_vfr = False
    for path in real_clips:
        clip = read_video(path)
        decoded = _all_frames(path)
        times = np.array([t for t, _ in decoded])
        steps = np.diff(times)
        seen_vfr |= steps.max() - steps.min() > 1e-3 or abs(1 / np.median(steps) - 7.288) < 0.05
        assert clip.frames.shape[0] == 5 and clip.frames.dtype == np.uint8
        assert clip.frames.shape[1:] == decoded[0][1].shape
        assert clip.meta["subset"] == "video" and clip.meta["name"] == path.stem
        assert not clip.gt_available.any() and clip.masks is None
        targets = (np.arange(5) + 15 / 16)
        np.testing.assert_allclose(clip.meta["target_times"], targets)
        for k in range(5):
            nearest = int(np.argmin(np.abs(times - targets[k])))
            assert clip.frame_times[k] == pytest.approx(times[nearest], abs=1e-9), path.name
            np.testing.assert_array_equal(clip.frames[k], decoded[nearest][1])
        # 16 kHz mono, about 5 s, same sound as PyAV's own decode (channel mean, resampled independently)
        assert clip.waveform.dtype == np.float32 and clip.waveform.ndim == 1
        assert abs(len(clip.waveform) - 80000) <= 1600, (path.name, len(clip.waveform))
        ref, sr = _reference_audio(path)
        ref16 = resample_audio(ref, sr, 16000)[: len(clip.waveform)]
        n = min(len(ref16), len(clip.waveform))
        corr = np.corrcoef(ref16[:n], clip.waveform[:n])[0, 1]
        assert corr > 0.999, (path.name, corr)
    assert seen_vfr


def test_max_seconds_and_fps(real_clips):
    clip = read_video(real_clips[0], fps=2.0, max_seconds=2.0)
    np.testing.assert_allclose(clip.meta["target_times"], (np.arange(4) + 15 / 16) / 2)
    assert clip.frames.shape[0] == 4
    assert len(clip.waveform) == 32000


def test_write_read_round_trip(tmp_path):
    T, fps = 80, 16                                            # 5 s; AVSBench picks frames 15, 31, 47, 63, 79
    frames = np.zeros((T, 48, 64, 3), np.uint8)
    for i in range(T):
        frames[i] = (i * 3) % 256
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(5 * sr) / sr
    audio = (0.3 * np.sin(2 * np.pi * 500 * t * (1 + t / 5)) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    out = write_video(tmp_path / "rt.mp4", frames, fps, audio=audio)
    assert out.is_file() and not list(tmp_path.glob(".*tmp"))
    clip = read_video(out)
    assert clip.frames.shape == (5, 48, 64, 3)
    np.testing.assert_allclose(clip.frame_times, np.arange(5) + 15 / 16, atol=1e-6)
    picked = clip.frames[:, :, :, 0].reshape(5, -1).mean(1)
    np.testing.assert_allclose(picked, [45, 93, 141, 189, 237], atol=3)
    assert len(clip.waveform) == len(audio)
    corr = np.corrcoef(clip.waveform[1000:-1000], audio[1000:-1000])[0, 1]
    assert corr > 0.95                                         # aac is lossy, but not shifted


def test_write_odd_size_and_no_audio(tmp_path):
    frames = np.full((6, 25, 33, 3), 200, np.uint8)
    write_video(tmp_path / "odd.mp4", frames, 2.0)
    with av.open(str(tmp_path / "odd.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (34, 26)
        assert not c.streams.audio
    with pytest.raises(DataError, match="has no audio track") as e:
        read_video(tmp_path / "odd.mp4")
    assert "odd.mp4" in str(e.value) and "ffmpeg" in e.value.hint


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_unreadable_video(tmp_path, content):
    p = tmp_path / "broken.mp4"
    p.write_bytes(content)
    with pytest.raises(DataError, match="broken.mp4"):
        read_video(p)


def test_display_rotation_is_applied_on_decode(tmp_path):
    """A phone-style video coded 160x96 with a 'rotate 90 degrees clockwise' display matrix reads as played."""
    from fractions import Fraction

    from coprop.data.video_frames import iter_frames, plan_frames

    path = tmp_path / "phone.mp4"
    img = np.zeros((96, 160, 3), np.uint8)
    img[:, :40] = 255                                           # band over the left quarter as coded
    with av.open(str(path), "w") as o:
        vs = o.add_stream("libx264", rate=4)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        vs.set_display_rotation(-90)
        a = o.add_stream("aac", rate=16000, layout="mono")
        for i in range(8):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 4)
            o.mux(vs.encode(f))
        o.mux(vs.encode(None))
        af = av.AudioFrame.from_ndarray(np.zeros((1, 32000), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = 16000, 0, Fraction(1, 16000)
        o.mux(a.encode(af))
        o.mux(a.encode(None))
    clip = read_video(path)
    assert clip.frames.shape == (2, 160, 96, 3) and clip.meta["rotation"] == -90
    assert clip.frames[0, :35].mean() > 200 and clip.frames[0, 45:].mean() < 30   # the band is on top
    (k, rgb, t, rot), = list(iter_frames(path, fps=1.0, max_seconds=1.5))
    assert (k, rgb.shape, rot) == (0, (160, 96, 3), -90) and t == pytest.approx(1.0)
    plan = plan_frames(path, fps=1.0)
    np.testing.assert_allclose(plan.times, clip.frame_times)
    unturned = next(iter_frames(path, rotate=False))
    assert unturned[1].shape == (96, 160, 3) and unturned[3] == 0


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
def test_block_resampler_equals_resampling_at_once(sr):
    """The soundtrack is resampled block by block (memory of one block); the result is that of the whole signal."""
    from coprop.data.media import BlockResampler

    x = np.random.default_rng(sr).standard_normal(int(sr * 3.7) + 13)
    ref = resample_audio(x, sr, 16000).astype(np.float32)
    br = BlockResampler(sr, 16000, block_s=0.5)
    rng = np.random.default_rng(1)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        br.push(x[i:i + n])
        i += n
    out = br.finish()
    assert len(out) == len(ref) and br.done == len(x)
    np.testing.assert_allclose(out, ref, atol=1e-6)
