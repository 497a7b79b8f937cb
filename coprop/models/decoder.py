"""Mask decoding: an FPN that turns 4 feature levels into per-pixel features at stride 4, and a query head that
dot-products query embeddings with them (MaskFormer-style) to give one mask logit map per query."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_norm_act(c_in: int, c_out: int, k: int = 3, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.GroupNorm(math.gcd(32, c_out), c_out)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FPNDecoder(nn.Module):
    """Top-down FPN: ``in_channels`` fine-to-coarse -> per-pixel features [B, dim, H1, W1] at the finest level."""

    def __init__(self, in_channels: list[int], dim: int):
        super().__init__()
        self.lateral = nn.ModuleList(conv_norm_act(c, dim, k=1, act=False) for c in in_channels)
        self.smooth = nn.ModuleList(conv_norm_act(dim, dim) for _ in in_channels[:-1])
        self.out = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            x = F.interpolate(x, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.smooth[i](x + self.lateral[i](feats[i]))
        return self.out(x)


class QueryMaskHead(nn.Module):
    """logits[b, q] = <MLP(query[b, q]), pixel[b, :, y, x]> + bias[q]."""

    def __init__(self, dim: int, num_queries: int):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.bias = nn.Parameter(torch.zeros(num_queries))
        self.scale = dim ** -0.5  # keeps initial logits O(1) whatever the width

    def forward(self, queries: torch.Tensor, pixel: torch.Tensor) -> torch.Tensor:
        """queries [B,Q,dim], pixel [B,dim,H,W] -> logits [B,Q,H,W]."""
        logits = torch.einsum("bqc,bchw->bqhw", self.embed(queries), pixel) * self.scale
        return logits + self.bias[None, :, None, None]
