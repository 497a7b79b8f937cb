"""What each stage optimises and how it is validated.

A step module wraps a model so that ``forward(batch) -> loss``: DDP synchronises gradients only through a
module's ``forward``, and the propagator trains through ``forward_train``, not ``forward``.
Validation runs the model the way the pipeline will and scores it with ``coprop.metrics.Evaluator``
at the model resolution (the synthetic benchmark and AVSBench GT are at that resolution for the
tiny/paper configs: 128 and 224 px).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from coprop.train.data import PreparedClip, identity_map, normalise, to_identities


def _loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
          valid: torch.Tensor | None = None) -> torch.Tensor:
    from coprop.models.losses import segmentation_loss

    # the loss in fp32 even under autocast: BCE/dice sums over many pixels
    return segmentation_loss(logits.float(), target, num_classes, valid=valid)


def binary_from_identities(logits: torch.Tensor) -> torch.Tensor:
    """[..., 2, S, S] identity logits (background, object) -> [..., 1, S, S] object-vs-background log-odds.

    sigmoid(l1 - l0) is exactly the two-way softmax probability of the object, so the binary loss and
    metrics apply unchanged.
    """
    return (logits[..., 1:2, :, :] - logits[..., 0:1, :, :])


def class_from_identities(logits: torch.Tensor, classes: list[int], num_classes: int) -> torch.Tensor:
    """[..., n+1, S, S] identity logits -> [..., K, S, S] class logits (classes not propagated: very low)."""
    out = logits.new_full((*logits.shape[:-3], num_classes, *logits.shape[-2:]), -1e4)
    out[..., 0, :, :] = logits[..., 0, :, :]
    for j, k in enumerate(classes, start=1):
        out[..., k, :, :] = logits[..., j, :, :]
    return out


class KeyframeStep(nn.Module):
    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        self.model, self.num_classes = model, num_classes

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(batch["image"], batch["audio"], batch.get("label"))
        return _loss(logits, batch["mask"], self.num_classes)


class BaselineStep(nn.Module):
    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        self.model, self.num_classes = model, num_classes

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(batch["frames"], batch["audio"])            # [B,T,K,S,S]
        return _loss(logits, batch["masks"], self.num_classes, valid=batch["gt"])


class PropagatorStep(nn.Module):
    def __init__(self, model: nn.Module, mode: str):
        super().__init__()
        self.model, self.mode = model, mode

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        n = int(batch["num_objects"].max())
        logits = self.model.forward_train(batch["frames"], batch["audio"], batch["first_mask"], n)
        if self.mode == "binary":
            return _loss(binary_from_identities(logits), batch["targets"], 1, valid=batch["weight"])
        return _loss(logits, batch["targets"], n + 1, valid=batch["weight"])


# ------------------------------------------------------------------------------------------ validation

def _evaluator(mode: str, num_classes: int):
    from coprop.metrics import Evaluator

    return Evaluator(mode, num_classes=num_classes) if mode == "semantic" else Evaluator(mode)


def _summary(result: dict) -> dict[str, float]:
    """The headline numbers of an Evaluator result: J (mIoU for AVSS), F and the Alignment Rate."""
    return {"J": float(result["J"]), "F": float(result["F"]), "alignment": float(result["alignment_all"])}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_keyframe(model: nn.Module, clips: Sequence[PreparedClip], mode: str, num_classes: int,
                      batch_size: int = 16) -> dict[str, float]:
    """Keyframe model on every annotated frame of every clip."""
    ev, dev = _evaluator(mode, num_classes), _device(model)
    for c in clips:
        idx = np.flatnonzero(c.gt)
        if len(idx) == 0:
            continue
        parts = []
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            parts.append(model(normalise(c.frames[j]).to(dev), torch.from_numpy(c.audio[j]).to(dev), None).float())
        logits = torch.cat(parts).cpu()
        ev.add(c.name, logits, torch.from_numpy(c.masks[idx]).long(), np.ones(len(idx), bool))
    return _summary(ev.result())


@torch.no_grad()
def evaluate_baseline(model: nn.Module, clips: Sequence[PreparedClip], mode: str, num_classes: int
                      ) -> dict[str, float]:
    """The simultaneous baseline decodes each whole clip at once."""
    ev, dev = _evaluator(mode, num_classes), _device(model)
    for c in clips:
        if not c.gt.any():
            continue
        logits = model(normalise(c.frames)[None].to(dev), torch.from_numpy(c.audio)[None].to(dev))[0].float().cpu()
        ev.add(c.name, logits, torch.from_numpy(c.masks).long(), c.gt)
    return _summary(ev.result())


@torch.no_grad()
def evaluate_propagator(model: nn.Module, clips: Sequence[PreparedClip], mode: str, num_classes: int,
                        max_objects: int = 10) -> dict[str, float]:
    """Propagate each GT-control-point segment from its GT keyframe; score the propagated frames only."""
    ev, dev = _evaluator(mode, num_classes), _device(model)
    K = 1 if mode == "binary" else num_classes
    scored = 0
    for c in clips:
        T, S = len(c.gt), c.masks.shape[-1]
        logits = torch.zeros(T, K, S, S)
        avail = np.zeros(T, bool)
        starts = [t for t in range(T) if c.control_points[t]] + [T]
        for s, e in zip(starts[:-1], starts[1:]):
            if e - s < 2 or not c.gt[s]:
                continue
            classes = identity_map(c.masks[s], mode, max_objects)
            first = torch.from_numpy(to_identities(c.masks[s], classes))[None].to(dev)
            out = model.forward_train(normalise(c.frames[s:e])[None].to(dev),
                                      torch.from_numpy(c.audio[s:e])[None].to(dev), first,
                                      max(1, len(classes)), id_shuffle=False)[0].float().cpu()
            logits[s + 1:e] = binary_from_identities(out) if mode == "binary" else \
                class_from_identities(out, classes, num_classes)
            avail[s + 1:e] = c.gt[s + 1:e]
        if avail.any():
            ev.add(c.name, logits[avail], torch.from_numpy(c.masks[avail]).long(), np.ones(int(avail.sum()), bool))
            scored += int(avail.sum())
    return _summary(ev.result()) if scored else {}
