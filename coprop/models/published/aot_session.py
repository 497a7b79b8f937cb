"""One video through R50-AOTL, as aot-benchmark's evaluator runs it (reference/aot-tpavi.md sections 1.10-1.11).

    sess = model.start(frame0, mask0, long_term_gap=5)     # reference frame: memorised, not decoded
    out = sess.step(frame)                                  # out.logits [K+1, ceil(H/4), ceil(W/4)], out.labels [H, W]
    out = sess.step(frame, memory_labels=fixed)             # memorise ``fixed`` instead of the prediction

Memory: long-term = the reference frame plus every frame t with ``t - last >= long_term_gap`` (prepended,
never evicted, as the original); short-term = the previous frame. A frame's memory value is made from its
hard label map (one-hot -> ID bank), never from probabilities.

Precision. The session computes in the model's dtype (float32 as released; float64 after ``model.double()``),
except the FPN decoder and the label upsampling, which ``decoder_precision='float64'`` (the default) runs in
float64 on a per-call float64 cast of the decoder's weights; ``out.logits`` stays float32. Why: a pixel whose top
two classes are tied to ~1e-7 in probability can take the other label under another CPU's float32 kernels, and
a flipped label enters the memory and grows. Golden case 1 has one such pixel (frame 2, (19, 89): a tie to 8e-9
in float64); with an all-float32 session this CPU (oneDNN, AVX2) flipped it, 141 px (0.42 %) differed at frame 5.
Nearly all of the extra float32 error was the decoder's 3x3 convolutions; with the decoder in float64 both golden
cases match every label and the logits' worst difference falls from 4.6e-6 to 2.3e-6. Cost measured at 161x209,
one CPU thread: decoder 0.053 -> 0.124 s, whole step 0.35 -> 0.41 s (+19 %); ``decoder_precision='model'`` is
the all-float32 path (logits still within 1e-4 of the original, near-tie labels less stable).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from coprop.errors import ConfigError, DataError
from coprop.models.common import IMAGENET_MEAN, IMAGENET_STD
from coprop.models.published.aot_layers import sine_position_embedding

DECODER_PRECISIONS = ("float64", "model")   # the decoder (and the label upsampling) in float64, or in the model's dtype


@dataclass
class AOTStep:
    """One propagated frame: ``logits`` float32 ``[K+1, ceil(H/4), ceil(W/4)]`` (decoder output, channels 0..K,
    before upsampling); ``labels`` int64 ``[H, W]`` (argmax after upsampling all channels to H x W)."""

    logits: Tensor
    labels: Tensor


def normalise_frame(frame, device=None) -> Tensor:
    """uint8 RGB ``[H, W, 3]`` -> float32 ``[1, 3, H, W]``, the original's arithmetic (section 1.4): /255 in
    float32, then mean and std subtracted/divided in float64 and stored as float32 after each step."""
    x = torch.as_tensor(np.asarray(frame) if not torch.is_tensor(frame) else frame)
    if x.ndim != 3 or x.shape[-1] != 3 or x.dtype != torch.uint8:
        raise DataError(None, f"an AOT frame must be uint8 RGB [H, W, 3], got {x.dtype} {tuple(x.shape)}",
                        "pass the decoded frame as it is (no resizing or normalisation)")
    x = x.to(device).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64, device=x.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64, device=x.device)
    x = (x.double() - mean).float()
    x = (x.double() / std).float()
    return x.permute(2, 0, 1)[None].contiguous()


def _labels(mask, size: tuple[int, int], num_objects: int, device, what: str) -> Tensor:
    m = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask)
    if m.dtype.is_floating_point or m.dtype == torch.bool or tuple(m.shape) != size:
        raise DataError(None, f"{what} must be an integer map of shape {size}, got {m.dtype} {tuple(m.shape)}",
                        "give object ids 0..K per pixel (0 = background) at the frame's size")
    lo, hi = int(m.min()), int(m.max())
    if lo < 0 or hi > num_objects:
        raise DataError(None, f"{what} holds ids {lo}..{hi}; this session tracks objects 1..{num_objects}",
                        "use 0 for background and the ids of the first mask")
    return m.to(device=device, dtype=torch.long)


class AOTSession:
    """The per-video state of R50-AOTL; created by ``R50AOTL.start``. Runs without gradients.

    ``decoder_precision``: ``'float64'`` (default) or ``'model'`` (the model's own dtype), see the module
    docstring; anything else raises ConfigError.
    """

    def __init__(self, model, frame0, mask0, long_term_gap: int = 5, num_objects: int | None = None,
                 decoder_precision: str = "float64"):
        if long_term_gap < 1:
            raise ConfigError(f"long_term_gap must be >= 1, got {long_term_gap}")
        if decoder_precision not in DECODER_PRECISIONS:
            raise ConfigError(f"decoder_precision must be one of {DECODER_PRECISIONS}, got {decoder_precision!r}")
        self.model, self.gap = model, int(long_term_gap)
        first = next(model.parameters())
        # the model's dtype (float32 as released, float64 after ``model.double()``) everywhere but the decoder,
        # whose float32 3x3 convolutions decided golden case 1's near-tie pixel differently (module docstring)
        self.device, self.dtype = first.device, first.dtype
        self.decoder_dtype = torch.float64 if decoder_precision == "float64" else self.dtype
        image = normalise_frame(frame0, self.device).to(self.dtype)
        self.size = tuple(image.shape[-2:])
        ids = torch.as_tensor(np.asarray(mask0) if not torch.is_tensor(mask0) else mask0)
        self.num_objects = int(ids.max()) if num_objects is None and ids.numel() else int(num_objects or 0)
        if self.num_objects > model.max_objects:
            raise ConfigError(f"{self.num_objects} objects, but one R50-AOTL engine tracks at most "
                              f"{model.max_objects}; split the objects over several sessions")
        labels = _labels(mask0, self.size, self.num_objects, self.device, "mask0")
        self.t = 0
        self.last_memory_step = 0
        with torch.inference_mode():
            _, proj = model.encode(image)
            self.grid = tuple(proj.shape[-2:])
            self.pos = sine_position_embedding(*self.grid, proj.shape[1], self.device).to(self.dtype)
            id_emb = model.id_embedding(self._onehot(labels))
            _, keys, hs = model.lstt(proj.flatten(2).transpose(1, 2), self.pos, self.grid, id_emb=id_emb)
            values = model.memory_values(hs, id_emb)
        self.long_term = [[(k, v)] for k, v in zip(keys, values)]   # per layer, newest first
        self.short_term = list(zip(keys, values))

    def _onehot(self, labels: Tensor) -> Tensor:
        return F.one_hot(labels, self.model.max_objects + 1).permute(2, 0, 1)[None].to(self.dtype)

    def long_term_frames(self) -> int:
        """Frames held in the long-term memory (the reference frame included)."""
        return len(self.long_term[0])

    def _memories(self) -> list:
        out = []
        for entries, short in zip(self.long_term, self.short_term):
            keys = torch.cat([k for k, _ in entries], 1) if len(entries) > 1 else entries[0][0]
            values = torch.cat([v for _, v in entries], 1) if len(entries) > 1 else entries[0][1]
            out.append(((keys, values), short))
        return out

    def step(self, frame, memory_labels=None) -> AOTStep:
        """Propagate to the next frame (uint8 RGB ``[H, W, 3]``, the first frame's size) and memorise it.

        ``memory_labels`` (int ``[H, W]``, ids 0..K): memorise the frame with these labels instead of the
        prediction (teacher forcing; a user's correction). Returns AOTStep (tensors on the model's device).
        """
        model = self.model
        image = normalise_frame(frame, self.device).to(self.dtype)
        if tuple(image.shape[-2:]) != self.size:
            raise DataError(None, f"frame size {tuple(image.shape[-2:])} differs from the first frame's {self.size}",
                            "resize every frame of a video to the same size")
        forced = None if memory_labels is None else _labels(memory_labels, self.size, self.num_objects,
                                                            self.device, "memory_labels")
        with torch.inference_mode():
            skips, proj = model.encode(image)
            outs, keys, hs = model.lstt(proj.flatten(2).transpose(1, 2), self.pos, self.grid, self._memories())
            logits = model.decode(proj, outs, skips, dtype=self.decoder_dtype)
            logits[:, self.num_objects + 1:] = -1e10          # identities this video does not use
            probs = F.interpolate(logits, size=self.size, mode="bilinear", align_corners=True).softmax(1)
            labels = probs.argmax(1)[0]                        # first index wins ties, as the original
            id_emb = model.id_embedding(self._onehot(labels if forced is None else forced))
            values = model.memory_values(hs, id_emb)
        self.t += 1
        self.short_term = list(zip(keys, values))
        if self.t - self.last_memory_step >= self.gap:
            for entries, kv in zip(self.long_term, self.short_term):
                entries.insert(0, kv)
            self.last_memory_step = self.t
        return AOTStep(logits=logits[0, :self.num_objects + 1].float(), labels=labels)
