"""What the pipeline returns: one clip's ``Prediction`` (logits, control points, keyframes, timings, memory)
and a dataset's ``DatasetPredictions`` (with every bad clip named)."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Prediction:
    """One clip's output. ``timings_ms``: stage -> milliseconds for the whole clip."""

    name: str
    logits: Tensor                      # float32 [T, K, H, W] on the CPU
    control_points: list[int]
    keyframes: list[int]
    timings_ms: dict[str, float]
    state_bytes: int = 0                # most bytes the propagation state held at once
    peak_memory_bytes: int | None = None  # CUDA peak allocation during predict (None on the CPU)
    notes: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "binary" if self.logits.shape[1] == 1 else "semantic"

    def masks(self) -> Tensor:
        """int64 [T, H, W]: {0,1} (binary, logit > 0) or class ids (semantic, argmax)."""
        if self.mode == "binary":
            return (self.logits[:, 0] > 0).long()
        return self.logits.argmax(1)


@dataclass
class DatasetPredictions:
    predictions: dict[str, Prediction]
    bad_clips: list[tuple[str, str]]    # (clip name, what was wrong)

    def __len__(self) -> int:
        return len(self.predictions)
