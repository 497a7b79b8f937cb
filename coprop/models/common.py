"""Input preparation, logit resizing and local weight-file handling shared by every model."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coprop.errors import WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def prepare_frames(frames, size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB frames [T,H,W,3] (numpy or tensor) -> float [T,3,size,size], ImageNet-normalised.

    Antialiased bilinear resize, so downscaling a 720p video behaves like AVSBench's PIL resize.
    """
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"prepare_frames expects uint8 [T,H,W,3] frames, got shape {tuple(x.shape)}")
    x = x.to(device=device).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def prepare_audio(clip, device: torch.device | str | None = None) -> torch.Tensor:
    """A Clip's per-frame VGGish log-mel examples as float [T,1,96,64] (AVSBench padding rules)."""
    from coprop.data.audio import clip_logmel

    return torch.as_tensor(np.asarray(clip_logmel(clip), dtype=np.float32), device=device)


def resize_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of logits [..., K, h, w] to [..., K, H, W] (any leading dims)."""
    size = (int(size[0]), int(size[1]))
    if tuple(logits.shape[-2:]) == size:
        return logits
    lead = logits.shape[:-3]
    flat = logits.reshape(-1, *logits.shape[-3:])
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])


def cpu_layout(module: nn.Module) -> nn.Module:
    """``module`` with channels-last (NHWC) weights when they live on a CPU, unchanged elsewhere; returns it.
    On a CPU the tiny models' small 3x3 convolutions then run in oneDNN instead of the slow im2col path (measured:
    keyframe training step 0.14 -> 0.12 CPU s, audio pre-training step 0.083 -> 0.069, the demo's test predictions
    -28 %). Saved weights are made contiguous (coprop.train.checkpoint), so files do not depend on it."""
    first = next(module.parameters(), None)
    if first is not None and first.device.type == "cpu":
        module.to(memory_format=torch.channels_last)
    return module


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# ---- local weight files -------------------------------------------------------------------------------------

def pretrained_dir() -> Path:
    """Where default weight files are looked for: $COPROP_PRETRAINED or <repo>/pretrained."""
    from coprop.paths import repo_root

    return Path(os.environ.get("COPROP_PRETRAINED", repo_root() / "pretrained"))


def resolve_weights(path: str | Path | None, default_name: str | None, what: str, source: str,
                    example_keys: Iterable[str]) -> Path | None:
    """The weight file to load: ``path`` if given, else ``default_name`` in pretrained_dir(); None if neither.

    A given path that does not exist raises WeightsError with the keys the file must hold and where it comes from.
    """
    if path is None:
        if default_name is None:
            return None
        candidate = pretrained_dir() / default_name
        return candidate if candidate.is_file() else None
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(missing_file_message(p, what, source, example_keys))
    return p


def missing_file_message(path: Path | str, what: str, source: str, example_keys: Iterable[str]) -> str:
    keys = ", ".join(list(example_keys)[:4])
    return (f"{path}: {what} weight file not found. It must hold a state dict with keys like {keys}. "
            f"Get it from {source} and pass its path (or put it in {pretrained_dir()}); "
            f"for a randomly initialised model ask explicitly with allow_random=True.")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .pth/.pt/.safetensors checkpoint; unwraps the usual 'state_dict'/'model' containers."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, pickle that is not plain tensors, truncated download...
        raise WeightsError(f"{path}: cannot read weight file ({type(e).__name__}: {e}); "
                           f"re-download it or check that it is a PyTorch state dict") from e
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, Mapping) and wrapper in sd and isinstance(sd[wrapper], Mapping):
            sd = sd[wrapper]
    if not isinstance(sd, Mapping) or not all(torch.is_tensor(v) for v in sd.values()):
        raise WeightsError(f"{path}: not a state dict of tensors (got {type(sd).__name__})")
    return dict(sd)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], path: Path | str, what: str) -> None:
    """Strict load that reports missing/unexpected/mis-shaped keys as a WeightsError naming the file."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        def few(items):
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "")

        parts = [f"missing keys: {few(missing)}" if missing else "",
                 f"unexpected keys: {few(unexpected)}" if unexpected else "",
                 f"shape mismatches: {few(shapes)}" if shapes else ""]
        raise WeightsError(f"{path}: does not match the {what} architecture; "
                           + "; ".join(p for p in parts if p)
                           + ". Check that the file is the right release for this config.")
    module.load_state_dict(state, strict=True)
