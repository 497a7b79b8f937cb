"""Segmentation losses: binary BCE + soft dice (K = 1), semantic cross-entropy (+ optional soft dice)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from coprop.models.common import resize_logits


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
                      valid: torch.Tensor | None = None, dice: bool | None = None,
                      dice_weight: float = 1.0) -> torch.Tensor:
    """Mean loss over the frames that have GT.

    logits [..., K, h, w] (e.g. [N,K,h,w] or [B,T,K,h,w]) are resized to the target's [..., H, W] size; target
    holds {0,1} (K = 1) or class ids 0..K-1. ``valid`` bool [...] marks frames with GT (S4 train has frame 0
    only); with no valid frame the loss is a graph-connected zero. ``dice`` defaults to True for binary and
    False for semantic.
    """
    if logits.shape[-3] != num_classes:
        raise ValueError(f"logits have {logits.shape[-3]} channels but num_classes={num_classes}")
    if logits.shape[:-3] != target.shape[:-2]:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree on frames")
    logits = resize_logits(logits, target.shape[-2:]).flatten(0, -4)  # [N,K,H,W]
    target = target.flatten(0, -3).long()
    if valid is not None:
        keep = torch.as_tensor(valid, device=logits.device).bool().flatten()
        if not keep.any():
            return logits.sum() * 0.0
        logits, target = logits[keep], target[keep]
    dice = (num_classes == 1) if dice is None else dice
    if num_classes == 1:
        x, y = logits[:, 0], target.float()
        loss = F.binary_cross_entropy_with_logits(x, y)
        if dice:
            loss = loss + dice_weight * soft_dice(x.sigmoid()[:, None], y[:, None])
        return loss
    loss = F.cross_entropy(logits, target)
    if dice:
        onehot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
        loss = loss + dice_weight * soft_dice(logits.softmax(1), onehot)
    return loss


def soft_dice(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - Dice per frame and channel [N,C,H,W], averaged; eps keeps empty masks (silent frames) finite."""
    inter = (prob * target).flatten(2).sum(-1)
    total = prob.flatten(2).sum(-1) + target.flatten(2).sum(-1)
    return (1 - (2 * inter + eps) / (total + eps)).mean()
