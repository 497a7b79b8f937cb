"""TPAVI's building blocks under their released names (shared/reference/aot-tpavi.md sections 2.4-2.6).

- ``DilatedClassifier`` (``conv{1..4}``): four parallel 3x3 convs, dilation = padding = 3/6/12/18, summed 0+1+2+3.
- ``TPAVIBlock`` (``tpavi_b{1..4}``): the "dot" non-local block between a stage map and the audio -- no softmax,
  division by N = T*H*W -- then BatchNorm3d(W_z(y)) + x and a LayerNorm over channels.
- ``ResidualConvUnit`` / ``FusionBlock`` (``path{1..4}``): the decoder; the unit's first ReLU rewrites its input
  in place in the original, so a unit returns conv2(relu(conv1(relu(x)))) + relu(x).
- ``output_head`` (``output_conv``): conv 256->128, x2 bilinear with align_corners=False, conv 128->32, ReLU,
  1x1 conv to the classes.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

TPAVI_WINDOW = 5  # the original reshapes with a hard-coded 5: clips are processed as independent 5-frame windows


class DilatedClassifier(nn.Module):
    """[N,c_in,h,w] -> [N,256,h,w]: sum of four dilated 3x3 convs (AVSBench's ``Classifier_Module``)."""

    def __init__(self, c_in: int, c_out: int = 256, dilations=(3, 6, 12, 18)):
        super().__init__()
        self.conv2d_list = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, padding=d, dilation=d) for d in dilations)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2d_list[0](x)
        for conv in self.conv2d_list[1:]:
            out = out + conv(x)  # same order as the original's in-place sum
        return out


class TPAVIBlock(nn.Module):
    """Audio-visual "dot" non-local block (mode 'dot', 3-D, BN on, audio as the key).

    forward(x [B,C,T,H,W], audio [B,T,128]) -> (out [B,C,T,H,W], aligned audio [B,T,C]).

    The original forms f = theta(x)^T phi(A) (THW x THW, A = the aligned audio broadcast over H, W) and
    y = (f / N) g(x). Because phi(A) is constant over each frame's pixels this equals
    theta(x)^T (sum_t phi(a_t) G_t^T) / N with G_t = the sum of g(x) over frame t -- the same numbers (within
    5e-6, spec 2.5) without the THW x THW matrix (1 GB at stride 4).
    """

    def __init__(self, channels: int = 256, audio_dim: int = 128, align_bias: bool = True):
        super().__init__()
        inter = channels // 2
        self.inter = inter
        # registration order = the released key order (align_channel, norm_layer, g, W_z, theta, phi)
        self.align_channel = nn.Linear(audio_dim, channels, bias=align_bias)
        self.norm_layer = nn.LayerNorm(channels)
        self.g = nn.Conv3d(channels, inter, 1)
        self.W_z = nn.Sequential(nn.Conv3d(inter, channels, 1), nn.BatchNorm3d(channels))
        self.theta = nn.Conv3d(channels, inter, 1)
        self.phi = nn.Conv3d(channels, inter, 1)

    @staticmethod
    def _pointwise(conv: nn.Conv3d, x: Tensor) -> Tensor:
        """A 1x1x1 Conv3d applied to channel-last vectors [..., C_in] -> [..., C_out]."""
        return F.linear(x, conv.weight.flatten(1), conv.bias)

    def forward(self, x: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        B, C, T, H, W = x.shape
        a = self.align_channel(audio)                                   # [B,T,C]
        theta = self.theta(x).flatten(2).transpose(1, 2)                # [B,THW,inter]
        phi = self._pointwise(self.phi, a)                              # [B,T,inter]
        g_sum = self.g(x).flatten(3).sum(-1).transpose(1, 2)            # [B,T,inter], summed over each frame
        mix = phi.transpose(1, 2) @ g_sum                               # [B,inter,inter] = sum_t phi_t g_t^T
        y = (theta @ mix) / (T * H * W)                                 # [B,THW,inter]
        y = y.transpose(1, 2).reshape(B, self.inter, T, H, W)
        z = self.W_z(y) + x
        z = self.norm_layer(z.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        return z, a


class ResidualConvUnit(nn.Module):
    """conv2(relu(conv1(relu(x)))) + relu(x): the original's in-place ReLU makes the skip the rectified input."""

    def __init__(self, channels: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FusionBlock(nn.Module):
    """FFB(a) = up2(RCU2(a)); FFB(a, b) = up2(RCU2(a + RCU1(b))); up2 = bilinear x2, align_corners=True."""

    def __init__(self, channels: int = 256):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(channels)
        self.resConfUnit2 = ResidualConvUnit(channels)

    def forward(self, a: Tensor, b: Tensor | None = None) -> Tensor:
        if b is not None:
            a = a + self.resConfUnit1(b)
        return F.interpolate(self.resConfUnit2(a), scale_factor=2, mode="bilinear", align_corners=True)


class _Upsample2(nn.Module):
    """x2 bilinear with align_corners=False (the head's; the fusion blocks use True)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def output_head(num_classes: int, channels: int = 256) -> nn.Sequential:
    """``output_conv``: indices 0 (conv), 1 (upsample), 2 (conv), 3 (ReLU), 4 (1x1 conv) as released."""
    return nn.Sequential(nn.Conv2d(channels, 128, 3, padding=1), _Upsample2(), nn.Conv2d(128, 32, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(32, num_classes, 1))


def to_windows(x: Tensor, window: int = TPAVI_WINDOW) -> Tensor:
    """[B*T, C, H, W] -> [B*T/window, C, window, H, W] (the original's reshape with T fixed to 5)."""
    n, c, h, w = x.shape
    return x.reshape(n // window, window, c, h, w).transpose(1, 2)


def from_windows(x: Tensor) -> Tensor:
    """Inverse of ``to_windows``: [B, C, T, H, W] -> [B*T, C, H, W]."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


__all__ = ["DilatedClassifier", "FusionBlock", "ResidualConvUnit", "TPAVIBlock", "TPAVI_WINDOW",
           "from_windows", "output_head", "to_windows"]
