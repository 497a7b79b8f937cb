"""RegNetX feature trunks built in plain torch, for loading trained runs without importing timm.

Why: ``import timm`` imports torchvision, whose ``ops`` import ``torch._dynamo``: 3.3 s of CPU before the first
frame of ``coprop infer`` (2 cores, tiny config), more than the model then spends on 4 s of 30 fps video.
``coprop.models.backbones.build_backbone`` uses this trunk instead of timm's only inside ``loading_trained()``
(coprop infer), where every tensor is then overwritten by the run's weights file, so the random initialisation
(which differs from timm's, and draws differently from the global RNG) never matters.

The module tree, parameter and buffer names and shapes are those of ``timm.create_model(name,
features_only=True)`` (``stem``, ``s1``..``s4``, blocks ``b1``..``bN`` with ``conv1``/``conv2``/``conv3``/
``downsample``, each a conv + BatchNorm pair named ``conv``/``bn``), so a run's weights load strictly. In eval mode
the outputs are bit-identical to timm's (tests/test_regnet.py). Architecture: Radosavovic et al., "Designing
Network Design Spaces", CVPR 2020: a stride-2 3x3 stem, then four stages of X blocks (1x1 conv, 3x3 group conv
with the stage's stride, 1x1 conv, residual; BatchNorm after each conv, ReLU after the first two and after the
sum). Inference only: no stochastic depth, and the init is PyTorch's default.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class RegNetXSpec:
    stem: int                      # stem channels
    widths: tuple[int, ...]        # output channels of stages s1..s4
    depths: tuple[int, ...]        # blocks per stage
    group_width: int               # channels per group of the 3x3 convs


# RegNetX-200MF of the paper (timm: regnetx_002), the tiny config's backbone
SPECS = {"regnetx_002": RegNetXSpec(stem=32, widths=(24, 56, 152, 368), depths=(1, 1, 4, 7), group_width=8)}


class ConvBN(nn.Module):
    """conv (no bias) -> BatchNorm -> ``act``; ``coprop.infer_fast.fuse_conv_bn`` may fold ``bn`` into ``conv``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class XBlock(nn.Module):
    """RegNet's X block (bottleneck ratio 1): [B,cin,H,W] -> [B,cout,H/stride,W/stride]."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int):
        super().__init__()
        self.conv1 = ConvBN(cin, cout, 1)
        self.conv2 = ConvBN(cout, cout, 3, stride, groups=cout // group_width)
        self.conv3 = ConvBN(cout, cout, 1, act=False)
        self.act3 = nn.ReLU()
        self.downsample = ConvBN(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act3(self.conv3(self.conv2(self.conv1(x))) + shortcut)


class Stage(nn.Module):
    """Blocks ``b1``..``bN``; the first one strides by 2."""

    def __init__(self, cin: int, cout: int, depth: int, group_width: int):
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", XBlock(cin if i == 0 else cout, cout, 2 if i == 0 else 1, group_width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class FeatureInfo:
    """The two questions ``coprop.models.backbones`` asks of a timm feature model's ``feature_info``."""

    def __init__(self, channels: list[int], reductions: list[int]):
        self._channels, self._reductions = list(channels), list(reductions)

    def channels(self) -> list[int]:
        return list(self._channels)

    def reduction(self) -> list[int]:
        return list(self._reductions)


class RegNetXFeatures(nn.Module):
    """forward(x [B,3,H,W] float) -> 5 maps: the stem's (stride 2) and each stage's (strides 4, 8, 16, 32)."""

    def __init__(self, spec: RegNetXSpec):
        super().__init__()
        self.stem = ConvBN(3, spec.stem, 3, 2)
        cin = spec.stem
        for i, (w, d) in enumerate(zip(spec.widths, spec.depths), start=1):
            self.add_module(f"s{i}", Stage(cin, w, d, spec.group_width))
            cin = w
        self.feature_info = FeatureInfo([spec.stem, *spec.widths], [2 ** i for i in range(1, len(spec.widths) + 2)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for part in self.children():
            x = part(x)
            out.append(x)
        return out


def build(name: str) -> RegNetXFeatures:
    """The trunk of timm model ``name`` (a key of SPECS; KeyError otherwise)."""
    return RegNetXFeatures(SPECS[name])
