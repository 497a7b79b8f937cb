"""VGGish log-mel against an independent float64 numpy derivation, wav reading, resampling, padding."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch

from coprop.data import Clip
from coprop.data.audio import (clip_logmel, example_index, load_logmel_pkl, logmel_examples, read_wav,
                               resample_audio)
from coprop.data.clip import avsbench_frame_times
from coprop.errors import DataError


# ----------------------------------------------------------------------------- independent reference
def ref_mel_matrix() -> np.ndarray:
    """HTK mel filterbank, bin by bin (a different construction from coprop's vectorised one)."""
    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    n_bins, sr, bands = 257, 16000, 64
    lo, hi = mel(125.0), mel(7500.0)
    edges = [lo + (hi - lo) * i / (bands + 1) for i in range(bands + 2)]
    m = np.zeros((n_bins, bands))
    for k in range(1, n_bins):              # the DC bin row stays zero
        f_mel = mel(k * (sr / 2) / (n_bins - 1))
        for b in range(bands):
            a, c, z = edges[b], edges[b + 1], edges[b + 2]
            if a < f_mel <= c:
                m[k, b] = (f_mel - a) / (c - a)
            elif c < f_mel < z:
                m[k, b] = (z - f_mel) / (z - c)
    return m


def ref_examples(x: np.ndarray) -> np.ndarray:
    n = np.arange(400)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)           # periodic
    n_frames = 1 + (len(x) - 400) // 160
    spec = np.stack([np.abs(np.fft.rfft(x[i * 160: i * 160 + 400] * hann, 512)) for i in range(n_frames)])
    logmel = np.log(spec @ ref_mel_matrix() + 0.01)
    n_ex = n_frames // 96
    return np.stack([logmel[e * 96:(e + 1) * 96] for e in range(n_ex)])


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t * (1 + 0.1 * t)) \
        + 0.05 * rng.standard_normal(len(t))
    return np.round(x * 32767) / 32768.0                      # int16-representable, as read from a wav


@pytest.mark.parametrize("seconds,n_examples", [(5.0, 5), (10.0, 10), (0.98, 1), (2.5, 2)])
def test_logmel_matches_numpy_reference(seconds, n_examples):
    x = signal(seconds)
    got = logmel_examples(x)
    assert got.dtype == np.float32 and got.shape == (n_examples, 96, 64)
    ref = ref_examples(x)
    assert ref.shape == got.shape
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_logmel_accepts_torch_and_short_input():
    x = signal(5.0, seed=3)
    np.testing.assert_array_equal(logmel_examples(torch.from_numpy(x)), logmel_examples(x))
    assert logmel_examples(np.zeros(15599)).shape == (0, 96, 64)   # one sample short of one example
    assert logmel_examples(np.zeros(15600)).shape == (1, 96, 64)
    silent = logmel_examples(np.zeros(16000))
    np.testing.assert_allclose(silent, np.log(0.01), atol=1e-6)


def test_read_wav_int16_scaling_and_channel_mean(tmp_path):
    rng = np.random.default_rng(1)
    stereo = rng.integers(-20000, 20000, size=(20000, 2), dtype=np.int16)
    sf.write(tmp_path / "s.wav", stereo, 16000, subtype="PCM_16")
    wav, sr = read_wav(tmp_path / "s.wav")
    assert sr == 16000 and wav.dtype == np.float32
    np.testing.assert_allclose(wav, stereo.astype(np.float64).mean(1) / 32768.0, atol=1e-7)


def test_read_wav_resamples_or_refuses_other_rates(tmp_path):
    t = np.arange(44100 * 2) / 44100
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 44100, subtype="PCM_16")
    wav, sr = read_wav(tmp_path / "a.wav")
    assert sr == 16000 and len(wav) == 32000
    with pytest.raises(DataError, match="44100 Hz, expected 16000") as e:
        read_wav(tmp_path / "a.wav", expected_sr=16000)
    assert e.value.path.name == "a.wav"
    raw, sr = read_wav(tmp_path / "a.wav", resample=False)
    assert sr == 44100 and len(raw) == 88200


@pytest.mark.parametrize("sr_in,freq", [(44100, 1000.0), (48000, 7000.0), (8000, 3000.0), (22050, 440.0)])
def test_resampler_keeps_passband(sr_in, freq):
    n_in = sr_in * 2
    x = np.sin(2 * np.pi * freq * np.arange(n_in) / sr_in)
    y = resample_audio(x, sr_in, 16000)
    assert len(y) == 32000
    expect = np.sin(2 * np.pi * freq * np.arange(32000) / 16000)
    inner = slice(800, -800)            # away from the zero-padded edges
    assert np.abs(y[inner] - expect[inner]).max() < 5e-3


def test_resampler_removes_what_would_alias():
    sr_in = 44100
    x = np.sin(2 * np.pi * 11000 * np.arange(sr_in) / sr_in)   # above the 8 kHz output Nyquist
    y = resample_audio(x, sr_in, 16000)
    assert np.abs(y[800:-800]).max() < 1e-2


def _clip(wav, T, subset, logmel=None):
    return Clip(frames=np.zeros((T, 4, 4, 3), np.uint8), waveform=wav.astype(np.float32),
                frame_times=avsbench_frame_times(T), meta={"subset": subset, "name": "c"}, logmel=logmel)


def test_clip_logmel_pads_like_the_official_loaders():
    x = signal(3.5)                                           # 3 examples for 5 frames
    ex = logmel_examples(x)
    s4 = clip_logmel(_clip(x, 5, "s4"))
    assert s4.shape == (5, 1, 96, 64) and s4.dtype == np.float32
    np.testing.assert_array_equal(s4[:3, 0], ex)
    np.testing.assert_array_equal(s4[3, 0], ex[2])
    np.testing.assert_array_equal(s4[4, 0], ex[2])
    avss = clip_logmel(_clip(x, 5, "avss"))
    np.testing.assert_array_equal(avss[:3, 0], ex)
    assert not avss[3:].any()
    assert clip_logmel(_clip(x, 5, "avss"), num_frames=10).shape == (10, 1, 96, 64)


def test_clip_logmel_prefers_precomputed_and_trims():
    pre = np.random.default_rng(0).standard_normal((5, 1, 96, 64)).astype(np.float32)
    got = clip_logmel(_clip(signal(5.0), 5, "s4", logmel=pre))
    np.testing.assert_array_equal(got, pre)
    ten = clip_logmel(_clip(signal(10.0), 4, "video"))
    np.testing.assert_array_equal(ten[:, 0], logmel_examples(signal(10.0))[:4])
    with pytest.raises(DataError, match="too short"):
        clip_logmel(_clip(np.zeros(1000), 5, "s4"))


def test_example_index_follows_frame_seconds():
    np.testing.assert_array_equal(example_index(5, 1.0), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(example_index(6, 2.0), [0, 0, 1, 1, 2, 2])


def test_load_official_pkl(tmp_path):
    t = torch.randn(5, 1, 96, 64, requires_grad=True)
    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump(t, f)
    np.testing.assert_array_equal(load_logmel_pkl(tmp_path / "x.pkl"), t.detach().numpy())
    with open(tmp_path / "bad.pkl", "wb") as f:
        pickle.dump(torch.zeros(5, 96), f)
    with pytest.raises(DataError, match=r"bad\.pkl.*expected \[N,1,96,64\]"):
        load_logmel_pkl(tmp_path / "bad.pkl")


def test_long_clips_use_time_anchored_windows():
    """Frame k of a long clip must hear the audio near k + 15/16 s, not the drifting official example k."""
    from coprop.data.audio import clip_logmel, log_mel_spectrogram
    from coprop.data.clip import Clip, avsbench_frame_times

    T, sr = 40, 16000
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(T * sr)).astype(np.float32)
    burst_at = 30  # a loud burst only in second 30
    wav[burst_at * sr:(burst_at + 1) * sr] *= 20
    clip = Clip(frames=np.zeros((T, 8, 8, 3), np.uint8), waveform=wav, frame_times=avsbench_frame_times(T))
    ex = clip_logmel(clip)[:, 0]
    assert ex.shape == (T, 96, 64)
    loud = ex.mean(axis=(1, 2))
    assert int(np.argmax(loud)) == burst_at
    mel = log_mel_spectrogram(wav).float().numpy()
    np.testing.assert_allclose(ex[burst_at], mel[burst_at * 100: burst_at * 100 + 96], rtol=0, atol=1e-5)
