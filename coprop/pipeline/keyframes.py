"""The keyframe model behind one call, whatever its kind (paper Fig. 4: any segmenter can be the keyframe
model): image-level models see the keyframe, clip-level ones (e.g. the simultaneous baseline) a run of frames."""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import Tensor, nn

from coprop.errors import ConfigError


class KeyframeAdapter:
    """Gives any segmenter one call: ``(frames [T,3,S,S], audio [T,1,96,64] | None, index, text_label)`` ->
    logits ``[K, S, S]`` of ``frames[index]``. Image-level models see that frame only; clip-level ones all
    of ``frames`` (the caller decides: the segment, the whole clip, or just the keyframe)."""

    def __init__(self, model: Callable, level: str | None = None):
        self.model = model
        self.level = level or self._detect(model)
        if self.level not in ("image", "clip"):
            raise ConfigError(f"keyframe model level must be 'image' or 'clip', got {self.level!r}")
        cfg = getattr(model, "cfg", None)
        self.image_size = getattr(cfg, "image_size", None)
        self.num_classes = getattr(cfg, "num_classes", None)

    @staticmethod
    def _detect(model: Callable) -> str:
        from coprop.models.simultaneous import SimultaneousBaseline

        if isinstance(model, SimultaneousBaseline):
            return "clip"
        fn = model.forward if isinstance(model, nn.Module) else model
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        first = params[0].name if params else ""
        if first in ("frames", "clip", "video"):
            return "clip"
        if first in ("image", "images", "frame", "x"):
            return "image"
        raise ConfigError(f"cannot tell whether keyframe model {type(model).__name__} takes one image or a clip "
                          f"(first argument {first!r}); pass keyframe_level='image' or 'clip' to CoProp")

    def __call__(self, frames: Tensor, audio: Tensor | None, index: int, text_label: int | None = None) -> Tensor:
        device = frames.device
        if self.level == "image":
            args = [frames[index:index + 1], None if audio is None else audio[index:index + 1]]
            if text_label is not None:
                args.append(torch.tensor([text_label], device=device))
            return self.model(*args)[0]
        args = [frames[None], None if audio is None else audio[None]]
        if text_label is not None:
            args.append(torch.full((1, len(frames)), text_label, device=device))
        return self.model(*args)[0, index]
