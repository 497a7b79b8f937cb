"""Per-frame audio features for the offline control-point detectors and for retrieval's fallback.

Everything starts from the clip's VGGish log-mel examples (one 0.96 s example per frame, [T,1,96,64],
coprop.data.audio.clip_logmel). The log-mel is log(mel + 0.01), so ``logmel - log(0.01)`` is the level
above the silence floor: non-negative, and zero for silence, which keeps cosine similarities meaningful.
"""
from __future__ import annotations

import math

import numpy as np

from coprop.data.clip import Clip

FLOOR = math.log(0.01)
BANDS = 16  # the 64 mel bins pooled in groups of 4: enough to tell sources apart, few enough to learn from


def clip_logmel(clip: Clip) -> np.ndarray:
    """float32 [T,96,64], one log-mel example per frame (coprop.data.audio.clip_logmel, which memoises per
    waveform: a detector's fit and its threshold search, retrieval and the fallback all look at the same clips)."""
    from coprop.data.audio import clip_logmel as _clip_logmel

    lm = np.asarray(_clip_logmel(clip), dtype=np.float32)
    return lm.reshape(lm.shape[0], lm.shape[-2], lm.shape[-1])


def spectrum_embedding(logmel: np.ndarray) -> np.ndarray:
    """[T,64]: mean level above the silence floor per mel band (the cosine detector's embedding)."""
    return np.maximum(logmel - FLOOR, 0.0).mean(axis=1)


def projection_embedding(logmel: np.ndarray, dim: int = 128, seed: int = 0) -> np.ndarray:
    """[T,dim]: a fixed Gaussian random projection of the whole above-floor example (96x64)."""
    x = np.maximum(logmel - FLOOR, 0.0).reshape(len(logmel), -1)
    w = np.random.default_rng(seed).standard_normal((x.shape[1], dim)).astype(np.float32) / math.sqrt(x.shape[1])
    return x @ w


def embed(logmel: np.ndarray, kind: str = "spectrum") -> np.ndarray:
    if kind == "spectrum":
        return spectrum_embedding(logmel)
    if kind == "projection":
        return projection_embedding(logmel)
    from coprop.errors import ConfigError

    raise ConfigError(f"unknown audio embedding {kind!r}; choose 'spectrum' or 'projection'")


def cosine(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Row-wise cosine similarity; two silent rows (both ~0) count as identical."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    sim = (a * b).sum(-1) / np.maximum(na * nb, eps)
    both_silent = (na < 1e-6) & (nb < 1e-6)
    return np.where(both_silent, 1.0, sim)


def consecutive_similarity(emb: np.ndarray) -> np.ndarray:
    """[T-1]: cosine(emb[t-1], emb[t]) for t = 1..T-1."""
    return cosine(emb[:-1], emb[1:])


def _bands(x: np.ndarray) -> np.ndarray:
    """[..., 64] -> [..., BANDS] by averaging neighbouring mel bins."""
    return x.reshape(*x.shape[:-1], BANDS, x.shape[-1] // BANDS).mean(-1)


def frame_features(logmel: np.ndarray) -> np.ndarray:
    """[T, 3*BANDS+2] per-frame features: band levels of the whole example, of its first and second half,
    overall level and within-frame change (a conversion inside the 0.96 s window shows up there)."""
    lvl = np.maximum(logmel - FLOOR, 0.0)
    half = lvl.shape[1] // 2
    whole, first, second = _bands(lvl.mean(1)), _bands(lvl[:, :half].mean(1)), _bands(lvl[:, half:].mean(1))
    inner = np.abs(first - second).mean(-1, keepdims=True)
    return np.concatenate([whole, first, second, whole.mean(-1, keepdims=True), inner], -1).astype(np.float32)


def pair_features(logmel: np.ndarray) -> np.ndarray:
    """[T-1, F]: features of the frame pair (t-1, t) for t = 1..T-1 — the learned detector's input."""
    f = frame_features(logmel)
    whole = f[:, :BANDS]
    first, second = f[:, BANDS:2 * BANDS], f[:, 2 * BANDS:3 * BANDS]
    d = whole[1:] - whole[:-1]
    cos_whole = cosine(whole[:-1], whole[1:])[:, None]
    cos_edge = cosine(second[:-1], first[1:])[:, None]  # the end of t-1 against the start of t
    cos_inner = cosine(first[1:], second[1:])[:, None]
    level = f[:, 3 * BANDS:3 * BANDS + 1]
    inner = f[:, 3 * BANDS + 1:]
    return np.concatenate([d, np.abs(d), cos_whole, cos_edge, cos_inner, level[1:], level[:-1],
                           np.abs(level[1:] - level[:-1]), inner[1:], inner[:-1], whole[1:]], -1).astype(np.float32)


def clip_embedding(logmel: np.ndarray) -> np.ndarray:
    """[64]: the clip's mean spectrum embedding, L2-normalised (retrieval's nearest-audio fallback)."""
    e = spectrum_embedding(logmel).mean(0)
    return e / max(float(np.linalg.norm(e)), 1e-8)
