"""The Clip: one video with its soundtrack, the contract every stage of the pipeline consumes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


@dataclass
class Clip:
    """One video.

    frames       uint8 [T,H,W,3] RGB.
    waveform     float32 [S] mono at 16 kHz (the whole soundtrack).
    frame_times  float64 [T] seconds; AVSBench timing puts frame k (0-based) near k + 15/16 s.
    masks        int64 [T,H,W] or None: {0,1} for binary subsets (s4, ms3), class ids 0..70 for avss.
    gt_available bool [T]: which frames carry a GT mask (S4 train: frame 0 only).
    meta         dict: name, subset ('s4'|'ms3'|'avss'|'video'), split, category, mode ('binary'|'semantic'),
                 source (path it was read from), and optionally 'synthetic': True, 'sounding' (per-frame
                 list of sounding category names, synthetic data only).
    logmel       float32 [T,1,96,64] or None: precomputed VGGish examples (official .pkl files); when None,
                 they are computed from ``waveform`` by coprop.data.audio.
    """

    frames: np.ndarray
    waveform: np.ndarray
    frame_times: np.ndarray
    masks: np.ndarray | None = None
    gt_available: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    logmel: np.ndarray | None = None

    def __post_init__(self):
        T = len(self.frames)
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"Clip.frames must be uint8 [T,H,W,3], got {self.frames.dtype} {self.frames.shape}")
        if self.masks is not None and self.masks.shape[:1] != (T,):
            raise ValueError(f"Clip.masks has {self.masks.shape[0]} frames, frames has {T}")
        if self.gt_available is None:
            self.gt_available = np.full(T, self.masks is not None, dtype=bool)
        if len(self.frame_times) != T or len(self.gt_available) != T:
            raise ValueError("Clip.frame_times and Clip.gt_available must have one entry per frame")

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "clip"))

    @property
    def mode(self) -> str:
        return str(self.meta.get("mode", "binary"))

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def avsbench_frame_times(num_frames: int, fps: float = 1.0) -> np.ndarray:
    """AVSBench timing: within each 1/fps-second slot, the frame sits at 15/16 of the slot."""
    return (np.arange(num_frames, dtype=np.float64) + 15.0 / 16.0) / float(fps)
