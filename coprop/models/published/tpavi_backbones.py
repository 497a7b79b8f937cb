"""The two TPAVI image backbones under their released parameter names (OpenNLPLab/AVSBench ``avs_scripts``).

- ``ResNetTrunk``: AVSBench's ``B2_ResNet`` as ``resnet.*`` -- a torchvision-layout ResNet-50 whose forward uses
  conv1, bn1, relu, maxpool, layer1, layer2, ``layer3_1`` and ``layer4_1``. The released files also hold a
  second, never used branch ``layer3_2``/``layer4_2``; it is not built here (22.1 M values saved): the
  loader's ``ignorable`` (coprop.models.published.PUBLISHED) accepts those keys.
- ``PVTv2``: the whai362 PVT-v2 as ``encoder_backbone.*`` (``patch_embed{i}``, ``block{i}.{j}``, ``norm{i}``),
  written from the spec in shared/reference/aot-tpavi.md section 2.3 so that the module's own state_dict is the
  released layout (timm renames every key).

Both map an ImageNet-normalised batch [B,3,H,W] (H, W multiples of 32) to 4 maps at strides 4/8/16/32.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

class ResNetTrunk(nn.Module):
    """ResNet-50 trunk with AVSBench's names; forward -> [256@/4, 512@/8, 1024@/16, 2048@/32]."""

    channels = (256, 512, 1024, 2048)

    def __init__(self):
        super().__init__()
        import timm

        # timm's resnet50 has torchvision's parameter names and block math (stride on the 3x3 conv)
        net = timm.create_model("resnet50", pretrained=False)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.act1, net.maxpool
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3_1, self.layer4_1 = net.layer3, net.layer4

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3_1(x2)
        return [x1, x2, x3, self.layer4_1(x3)]


class _PatchEmbed(nn.Module):
    """Overlapping patch embedding: conv (k 7 stride 4, or k 3 stride 2) -> tokens -> LayerNorm (eps 1e-5)."""

    def __init__(self, c_in: int, dim: int, kernel: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, kernel, stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class _Attention(nn.Module):
    """Spatial-reduction attention: keys/values from a stride-``sr`` conv of the map (+ LayerNorm eps 1e-5)."""

    def __init__(self, dim: int, heads: int, sr: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, sr)
            self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.heads, -1).transpose(1, 2)
        src = x
        if self.sr_ratio > 1:
            src = self.sr(x.transpose(1, 2).reshape(B, C, h, w)).flatten(2).transpose(1, 2)
            src = self.norm(src)
        k, v = self.kv(src).reshape(B, -1, 2, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        # plain softmax attention, as the original computes it (no fused kernel, same rounding)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class _DWConv(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        B, N, C = x.shape
        return self.dwconv(x.transpose(1, 2).reshape(B, C, h, w)).flatten(2).transpose(1, 2)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = _DWConv(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), h, w)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, sr: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class PVTv2(nn.Module):
    """PVT-v2 (default: b5 -- dims 64/128/320/512, heads 1/2/5/8, depths 3/6/40/3, reduction 8/4/2/1).

    forward(x [B,3,H,W]) -> [64@/4, 128@/8, 320@/16, 512@/32]; eval mode has no stochastic depth.
    """

    def __init__(self, dims=(64, 128, 320, 512), heads=(1, 2, 5, 8), depths=(3, 6, 40, 3), sr=(8, 4, 2, 1)):
        super().__init__()
        self.channels = tuple(dims)
        c_in = 3
        # registration order patch_embed{i}, block{i}, norm{i} per stage = the released file's key order
        for i, (d, h, n, r) in enumerate(zip(dims, heads, depths, sr), start=1):
            setattr(self, f"patch_embed{i}", _PatchEmbed(c_in, d, 7 if i == 1 else 3, 4 if i == 1 else 2))
            setattr(self, f"block{i}", nn.ModuleList(_Block(d, h, r) for _ in range(n)))
            setattr(self, f"norm{i}", nn.LayerNorm(d, eps=1e-6))
            c_in = d

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for i in range(1, 5):
            x, h, w = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                x = blk(x, h, w)
            x = getattr(self, f"norm{i}")(x)
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w).contiguous()
            outs.append(x)
        return outs


def build_backbone(kind: str) -> nn.Module:
    """'resnet50' -> ResNetTrunk, 'pvt_v2_b5' -> PVTv2 (random init; the checkpoint fills them)."""
    if kind == "resnet50":
        return ResNetTrunk()
    if kind == "pvt_v2_b5":
        return PVTv2()
    raise ValueError(f"unknown TPAVI backbone {kind!r}; choose 'resnet50' or 'pvt_v2_b5'")


__all__ = ["PVTv2", "ResNetTrunk", "build_backbone"]
