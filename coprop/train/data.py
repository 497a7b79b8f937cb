"""Training samples from Clips: annotated frames (keyframe stage), clip windows (baseline) and keyframe-started
segments (propagator).

Clips are decoded and resized once, when a dataset is built (uint8 frames at the model resolution, masks by
nearest resizing, log-mel per frame), so an epoch is pure training. Every random choice (flip, window
offset, segment start) comes from ``order.sample_rng(seed, epoch, index)``: resume- and worker-safe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from coprop.data.clip import Clip
from coprop.errors import DataError
from coprop.progress import progress
from coprop.train.order import sample_rng


@dataclass
class PreparedClip:
    name: str
    frames: np.ndarray        # uint8 [T,S,S,3] at model resolution
    audio: np.ndarray         # float32 [T,1,96,64]
    masks: np.ndarray         # uint8 [T,S,S] (class ids 0..70 or {0,1})
    gt: np.ndarray            # bool [T]
    control_points: list[int]  # from GT (all ones where the clip has no full GT)


def resize_frames_uint8(frames: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize (as models.common.prepare_frames does), kept in uint8 to save memory."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    m = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None]
    if m.shape[-2:] != (size, size):
        m = F.interpolate(m, size=(size, size), mode="nearest")
    return m[:, 0].to(torch.uint8).numpy()


def normalise(frames_uint8: np.ndarray) -> torch.Tensor:
    """uint8 [T,S,S,3] -> ImageNet-normalised float [T,3,S,S] (resize is a no-op: already at size)."""
    from coprop.models.common import prepare_frames

    return prepare_frames(frames_uint8, frames_uint8.shape[1])


def gt_control_points(clip: Clip) -> list[int]:
    """GT control points (the rule of coprop.controlpoints.annotate, as its keyframe_subset uses them)."""
    from coprop.controlpoints.annotate import clip_control_points

    return [int(c) for c in clip_control_points(clip)]


def prepare_clip(clip: Clip, size: int) -> PreparedClip:
    from coprop.models.common import prepare_audio

    if clip.masks is None:
        raise DataError(clip.meta.get("source"), f"clip {clip.name!r} has no GT masks",
                        "training needs annotated clips (a train split of AVSBench or the synthetic benchmark)")
    return PreparedClip(name=clip.name, frames=resize_frames_uint8(clip.frames, size),
                        audio=prepare_audio(clip).numpy().astype(np.float32),
                        masks=resize_masks(clip.masks, size), gt=np.asarray(clip.gt_available, bool).copy(),
                        control_points=gt_control_points(clip))


def prepare_clips(clips: Sequence[Clip], size: int, desc: str = "preparing clips") -> list[PreparedClip]:
    return [prepare_clip(c, size) for c in progress(clips, desc=desc, total=len(clips))]


class _Epoch(torch.utils.data.Dataset):
    def __init__(self, seed: int):
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return sample_rng(self.seed, self.epoch, index)


class FrameSamples(_Epoch):
    """One sample per annotated frame: {"image" [3,S,S], "audio" [1,96,64], "mask" [S,S] long}.

    ``select(clip, t) -> bool`` narrows the frames (the keyframe subset: GT control points).
    """

    def __init__(self, clips: Sequence[PreparedClip], seed: int = 0, hflip: bool = True,
                 select: Callable[[PreparedClip, int], bool] | None = None):
        super().__init__(seed)
        self.hflip = hflip
        self.index = [(ci, t) for ci, c in enumerate(clips) for t in range(len(c.gt))
                      if c.gt[t] and (select is None or select(c, t))]
        self.clips = clips

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ci, t = self.index[i]
        c = self.clips[ci]
        frame, mask = c.frames[t:t + 1], c.masks[t]
        if self.hflip and self.rng(i).random() < 0.5:
            frame, mask = frame[:, :, ::-1], mask[:, ::-1]
        return {"image": normalise(np.ascontiguousarray(frame))[0], "audio": torch.from_numpy(c.audio[t]),
                "mask": torch.from_numpy(np.ascontiguousarray(mask)).long()}


def is_keyframe(clip: PreparedClip, t: int) -> bool:
    return bool(clip.control_points[t])


class ClipSamples(_Epoch):
    """Windows of ``window`` frames: {"frames" [L,3,S,S], "audio" [L,1,96,64], "masks" [L,S,S], "gt" [L] bool}.

    Clips longer than the window get a random offset per (seed, epoch, index); clips without any
    annotated frame are left out.
    """

    def __init__(self, clips: Sequence[PreparedClip], window: int | None = None, seed: int = 0,
                 hflip: bool = True):
        super().__init__(seed)
        self.clips = [c for c in clips if c.gt.any()]
        self.window = window or min((len(c.gt) for c in self.clips), default=1)
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        c, L, rng = self.clips[i], self.window, self.rng(i)
        T = len(c.gt)
        idx = _window(T, L, int(rng.integers(0, max(1, T - L + 1))))
        frames, masks = c.frames[idx], c.masks[idx]
        if self.hflip and rng.random() < 0.5:
            frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
        return {"frames": normalise(np.ascontiguousarray(frames)), "audio": torch.from_numpy(c.audio[idx]),
                "masks": torch.from_numpy(np.ascontiguousarray(masks)).long(),
                "gt": torch.from_numpy(c.gt[idx] & (np.arange(L) < T))}


def _window(T: int, L: int, start: int) -> np.ndarray:
    """Frame indices start..start+L-1, repeating the last frame past the clip's end."""
    return np.minimum(np.arange(start, start + L), T - 1)


def identity_map(mask: np.ndarray, mode: str, max_objects: int) -> list[int]:
    """Class ids that become propagation identities 1..n (binary: the sounding object is identity 1)."""
    if mode == "binary":
        return [1]
    present = [int(k) for k in np.unique(mask) if k != 0]
    return present[:max_objects]


def to_identities(mask: np.ndarray, classes: list[int]) -> np.ndarray:
    out = np.zeros(mask.shape, np.int64)
    for j, k in enumerate(classes, start=1):
        out[mask == k] = j
    return out


class PropagationSamples(_Epoch):
    """A GT keyframe and the frames after it: the propagator's training sample.

    A start frame is drawn among annotated frames followed by at least one annotated frame of the same
    segment (GT control points), so the loss targets only frames the pipeline would propagate to.
    Returns {"frames" [L,...], "audio", "first_mask" [S,S] identity ids, "targets" [L-1,S,S],
    "weight" [L-1] bool (frames that count), "num_objects"}. L is at most ``window``: a sample ends at its
    last frame that counts, since propagation is causal and later frames cannot change the loss (on the demo's
    5-frame MS3-style clips that is 3.0 frames on average instead of 5). ``collate`` pads a batch to its
    longest sample with frames that do not count.
    """

    def __init__(self, clips: Sequence[PreparedClip], mode: str, window: int | None = None, seed: int = 0,
                 max_objects: int = 10, within_segment: bool = True, hflip: bool = True):
        super().__init__(seed)
        self.mode, self.max_objects, self.within_segment, self.hflip = mode, max_objects, within_segment, hflip
        self.window = window or min((len(c.gt) for c in clips), default=2)
        if self.window < 2:
            raise ValueError("propagation windows need at least 2 frames")
        self.items: list[tuple[PreparedClip, list[int]]] = []
        for c in clips:
            starts = [s for s in range(len(c.gt)) if c.gt[s] and self._weights(c, s).any()]
            if starts:
                self.items.append((c, starts))

    def _weights(self, c: PreparedClip, s: int) -> np.ndarray:
        T, L = len(c.gt), self.window
        w = np.zeros(L - 1, bool)
        for j in range(1, L):
            t = s + j
            if t >= T or (self.within_segment and c.control_points[t]):
                break
            w[j - 1] = c.gt[t]
        return w

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        c, starts = self.items[i]
        rng = self.rng(i)
        s = starts[int(rng.integers(0, len(starts)))]
        weight = self._weights(c, s)
        weight = weight[:np.flatnonzero(weight)[-1] + 1]
        idx = _window(len(c.gt), len(weight) + 1, s)
        frames, masks = c.frames[idx], c.masks[idx]
        if self.hflip and rng.random() < 0.5:
            frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
        classes = identity_map(masks[0], self.mode, self.max_objects)
        ids = to_identities(np.ascontiguousarray(masks), classes)
        return {"frames": normalise(np.ascontiguousarray(frames)), "audio": torch.from_numpy(c.audio[idx]),
                "first_mask": torch.from_numpy(ids[0]), "targets": torch.from_numpy(ids[1:]),
                "weight": torch.from_numpy(weight), "num_objects": torch.tensor(max(1, len(classes)))}

    @staticmethod
    def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Stack samples of different lengths: the shorter ones repeat their last frame, which does not count."""
        L = max(len(b["frames"]) for b in batch)

        def pad(x: torch.Tensor, n: int, fill=None) -> torch.Tensor:
            if len(x) >= n:
                return x
            extra = x[-1:].expand(n - len(x), *x.shape[1:]) if fill is None else x.new_full((n - len(x),), fill)
            return torch.cat([x, extra])

        return default_collate([{**b, "frames": pad(b["frames"], L), "audio": pad(b["audio"], L),
                                 "targets": pad(b["targets"], L - 1), "weight": pad(b["weight"], L - 1, False)}
                                for b in batch])
