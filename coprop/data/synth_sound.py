"""Sounds of the synthetic benchmark: one recipe per category, jittered per clip, gated by the sounding schedule.

Each recipe makes a category recognisable by ear (and by a log-mel CNN) without making it trivial: pitch,
loudness and timbre vary within a category, fundamental ranges of neighbouring categories overlap
(piano / dog / violin around 300-600 Hz; siren / lawnmower / violin harmonics around 1-2 kHz), and every clip
carries coloured background noise.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

SR = 16000
NYQUIST_GUARD = 7600.0  # keep partials under the VGGish mel range (<= 7500 Hz) and away from aliasing


def _phase(freq: np.ndarray) -> np.ndarray:
    return 2.0 * np.pi * np.cumsum(freq) / SR


def _harmonics(freq: np.ndarray, amps: np.ndarray, rng: np.random.Generator, stretch: float = 0.0) -> np.ndarray:
    """Sum of partials k*f0 (optionally stretched, piano-like) with random phases; partials above the guard drop."""
    ph = _phase(freq)
    fmax = float(freq.max()) if freq.size else 0.0
    ratios = [k * np.sqrt(1.0 + stretch * k * k) for k in range(1, len(amps) + 1)]
    keep = [(r, a, rng.uniform(0, 2 * np.pi)) for r, a in zip(ratios, amps) if r * fmax < NYQUIST_GUARD]
    if stretch == 0.0 and len(keep) > 4:
        # strictly harmonic: one period in a wavetable, read at the running phase (cost independent of #partials)
        L = 4096
        grid = np.arange(L + 1) * (2 * np.pi / L)
        table = sum(a * np.sin(r * grid + p) for r, a, p in keep)
        pos = np.mod(ph, 2 * np.pi) * (L / (2 * np.pi))
        i = np.minimum(pos.astype(np.int64), L - 1)
        frac = pos - i
        return table[i] * (1 - frac) + table[i + 1] * frac
    out = np.zeros_like(freq)
    for r, a, p in keep:
        out += a * np.sin(r * ph + p)
    return out


def band_noise(n: int, lo: float, hi: float, rng: np.random.Generator, tilt: float = 0.0) -> np.ndarray:
    """White noise kept to [lo, hi] Hz in the FFT domain, spectrum tilted by f^-tilt/2 (tilt 1 = pink)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    gain = ((f >= lo) & (f <= hi)).astype(np.float64)
    if tilt:
        gain *= np.maximum(f, 20.0) ** (-tilt / 2.0)
    x = np.fft.irfft(spec * gain, n)
    return x / (np.std(x) + 1e-12)


def _note_track(n: int, lo: float, hi: float, dur: tuple[float, float], rng) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant fundamental (a melody in [lo, hi]) and the sample index of every note onset."""
    f0 = np.empty(n)
    onsets = []
    i = 0
    while i < n:
        j = min(n, i + int(rng.uniform(*dur) * SR))
        f0[i:j] = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        onsets.append(i)
        i = j
    return f0, np.asarray(onsets)


def _decay_env(n: int, onsets: np.ndarray, tau: float, attack: float = 0.005) -> np.ndarray:
    """Envelope that restarts at every onset: fast linear attack, exponential decay."""
    env = np.zeros(n)
    bounds = list(onsets) + [n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        t = np.arange(b - a) / SR
        env[a:b] = np.minimum(1.0, t / attack) * np.exp(-t / tau)
    return env


def _bursts(n: int, rate: tuple[float, float], length: tuple[float, float], rng) -> list[tuple[int, int]]:
    """Random (start, end) sample ranges of short events separated by random pauses."""
    out, i = [], int(rng.uniform(0, 0.3) * SR)
    while i < n:
        L = int(rng.uniform(*length) * SR)
        out.append((i, min(n, i + L)))
        i += L + int(rng.uniform(*rate) * SR)
    return out


def violin(n: int, rng) -> np.ndarray:
    lo = rng.uniform(300, 420)
    f0, _ = _note_track(n, lo, lo * rng.uniform(1.5, 1.9), (0.4, 1.1), rng)
    t = np.arange(n) / SR
    f0 = f0 * (1.0 + rng.uniform(0.006, 0.015) * np.sin(2 * np.pi * rng.uniform(5.0, 6.5) * t))
    # smooth the note steps (bow changes are legato, not clicks)
    k = int(0.03 * SR)
    f0 = np.convolve(np.pad(f0, (k, k), mode="edge"), np.ones(k) / k, mode="same")[k:-k]
    expo = rng.uniform(0.8, 1.2)
    x = _harmonics(f0, 1.0 / np.arange(1, 25) ** expo, rng)
    return x + 0.04 * np.std(x) * band_noise(n, 2000, 7000, rng)


def piano(n: int, rng) -> np.ndarray:
    lo = rng.uniform(180, 260)
    f0, onsets = _note_track(n, lo, lo * rng.uniform(1.6, 2.0), (0.25, 0.6), rng)
    x = _harmonics(f0, 1.0 / np.arange(1, 14) ** rng.uniform(1.4, 1.9), rng, stretch=rng.uniform(0.5e-4, 2e-4))
    return x * _decay_env(n, onsets, rng.uniform(0.25, 0.6))


def dog(n: int, rng) -> np.ndarray:
    x = np.zeros(n)
    base = rng.uniform(280, 450)
    for a, b in _bursts(n, (0.2, 0.7), (0.08, 0.18), rng):
        L = b - a
        t = np.arange(L) / SR
        f = base * rng.uniform(0.9, 1.15) * (1.0 - 0.25 * t / max(t[-1], 1e-3))  # barks glide down
        env = np.sin(np.pi * np.arange(L) / L) ** 0.6
        tone = _harmonics(f, 1.0 / np.arange(1, 12), rng)
        x[a:b] = env * (tone + 0.5 * band_noise(L, 500, 3000, rng) * np.std(tone))
    return x


def bird(n: int, rng) -> np.ndarray:
    x = np.zeros(n)
    f_lo = rng.uniform(2500, 4200)
    up = rng.random() < 0.5
    for a, b in _bursts(n, (0.04, 0.16), (0.04, 0.12), rng):
        L = b - a
        s = np.linspace(0.0, 1.0, L)
        f1 = f_lo * rng.uniform(0.92, 1.08)
        f2 = f1 * rng.uniform(1.2, 1.5)
        f = f1 + (f2 - f1) * (s if up else 1.0 - s)
        ph = _phase(f)
        x[a:b] = np.sin(np.pi * s) * (np.sin(ph) + 0.15 * np.sin(2 * ph))
    # trills come in phrases separated by short rests
    gate = np.ones(n)
    for a, b in _bursts(n, (0.8, 1.6), (0.2, 0.6), rng):
        gate[a:b] = 0.0
    return x * gate


def car(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    base = rng.uniform(45, 110)
    f0 = base * (1.0 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3)))
    x = _harmonics(f0, 1.0 / np.arange(1, 31) ** rng.uniform(0.6, 0.9), rng)
    x /= np.std(x) + 1e-12
    return x + rng.uniform(0.4, 0.8) * band_noise(n, 60, 900, rng, tilt=1.0)


def drum(n: int, rng) -> np.ndarray:
    x = np.zeros(n)
    period = 1.0 / rng.uniform(1.8, 4.0)
    f_body = rng.uniform(70, 140)
    i, beat = 0, 0
    while i < n:
        L = min(n - i, int(0.3 * SR))
        t = np.arange(L) / SR
        body = np.sin(_phase(f_body * (1.0 + 0.6 * np.exp(-t / 0.03)))) * np.exp(-t / 0.12)
        snap = band_noise(L, 1000, 5000, rng) * np.exp(-t / 0.04) * (0.8 if beat % 2 else 0.25)
        x[i:i + L] += body + snap
        i += int(period * rng.uniform(0.93, 1.07) * SR)
        beat += 1
    return x


def siren(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    fc, depth, rate = rng.uniform(750, 1100), rng.uniform(0.2, 0.35), rng.uniform(0.3, 1.5)
    f = fc * (1.0 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)))
    return _harmonics(f, np.array([1.0, 0.3, 0.25, 0.1]), rng)


def lawnmower(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    lo = rng.uniform(600, 900)
    noise = band_noise(n, lo, lo * rng.uniform(2.8, 3.6), rng)
    am = 1.0 - rng.uniform(0.4, 0.7) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(20, 35) * t))
    buzz = _harmonics(np.full(n, rng.uniform(110, 170)), 1.0 / np.arange(1, 40) ** 0.8, rng)
    return noise * am + 0.6 * buzz / (np.std(buzz) + 1e-12)


RECIPES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "bird": bird, "car": car, "dog": dog, "drum": drum,
    "lawnmower": lawnmower, "piano": piano, "siren": siren, "violin": violin,
}


def gate(n: int, spans: list[tuple[float, float, float]], ramp: float = 0.02) -> np.ndarray:
    """Sum of gains over (t0, t1, gain) spans, edges smoothed by a ``ramp``-second moving average (O(n))."""
    g = np.zeros(n)
    for t0, t1, gain in spans:
        g[int(round(t0 * SR)):int(round(t1 * SR))] = gain
    k = max(1, int(ramp * SR))
    c = np.concatenate([[0.0], np.cumsum(np.pad(g, (k // 2, k - k // 2 - 1), mode="edge"))])
    return (c[k:] - c[:-k]) / k


def mix(duration: float, sources: list[tuple[str, list[tuple[float, float]]]], rng: np.random.Generator) -> np.ndarray:
    """The clip soundtrack: each (category, active spans) source, with its own loudness, plus background noise.

    Loudness varies per object (-8..0 dB) and per active span (+-3 dB); the noise floor sits 20-35 dB under
    a source at full level, with a random spectral tilt (white to brown).
    """
    n = int(round(duration * SR))
    out = np.zeros(n)
    for category, spans in sources:
        if not spans:
            continue
        x = RECIPES[category](n, rng)
        x = x / (np.sqrt(np.mean(x[np.abs(x) > 0] ** 2)) + 1e-12)
        level = 0.08 * 10 ** (rng.uniform(-8, 0) / 20)
        out += x * gate(n, [(a, b, level * 10 ** (rng.uniform(-3, 3) / 20)) for a, b in spans])
    out += 0.08 * 10 ** (-rng.uniform(20, 35) / 20) * band_noise(n, 20, 7900, rng, tilt=rng.uniform(0.0, 2.0))
    peak = np.abs(out).max()
    if peak > 0.95:
        out *= 0.95 / peak
    return out.astype(np.float32)
