"""R50-AOTL's layers exactly as aot-benchmark computes them (reference/aot-tpavi.md section 1).

Tokens are batch-first ``[B, N, C]`` of an ``h x w`` grid in row-major order (the original is sequence-first;
the arithmetic is the same). Module and parameter names are the released checkpoint's, so its keys load
unchanged: ``LSTT.layers.{i}.{norm1, self_attn.*, norm2, linear_Q, linear_V, long_term_attn.*,
short_term_attn.*, norm3, linear1, activation.*, linear2}`` (section 1.2).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coprop.models.lstt import _window_index, merge_heads, split_heads

D_MODEL, HEADS, FFN_HIDDEN, WINDOW = 256, 8, 1024, 15


class FrozenBatchNorm2d(nn.Module):
    """AOT's frozen batch norm: four buffers (no counter), eps 1e-5, always the eval-mode batch-norm kernel."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def sine_position_embedding(h: int, w: int, dim: int = D_MODEL, device=None) -> Tensor:
    """AOT's 2-D sine embedding (section 1.6) of an ``h x w`` grid -> ``[h*w, dim]`` float32.

    Channels 0..dim/2-1 encode the row, the rest the column; within each half feature i is sin (even i) or
    cos (odd i) of position / 10000^(2 floor(i/2) / (dim/2)); positions are normalised to [0, 2 pi].
    """
    half = dim // 2
    y = torch.arange(h, dtype=torch.float32, device=device)[:, None].expand(h, w)
    x = torch.arange(w, dtype=torch.float32, device=device)[None, :].expand(h, w)
    y = y / (h - 1 + 1e-6) * (2 * math.pi)
    x = x / (w - 1 + 1e-6) * (2 * math.pi)
    dim_t = torch.arange(half, dtype=torch.float32, device=device)
    dim_t = 10000.0 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)

    def encode(p: Tensor) -> Tensor:
        p = p[..., None] / dim_t
        return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=-1).flatten(-2)

    return torch.cat((encode(y), encode(x)), dim=-1).reshape(h * w, dim)


class SelfAttention(nn.Module):
    """Multi-head attention with its own input projections (``use_linear=True``): softmax(QK^T/sqrt(d))V."""

    def __init__(self, dim: int = D_MODEL, heads: int = HEADS):
        super().__init__()
        self.heads = heads
        self.linear_Q, self.linear_K, self.linear_V = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.projection = nn.Linear(dim, dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = (split_heads(lin(t), self.heads) for lin, t in ((self.linear_Q, q), (self.linear_K, k),
                                                                 (self.linear_V, v)))
        return self.projection(merge_heads(F.scaled_dot_product_attention(q, k, v)))


class GlobalAttention(nn.Module):
    """Long-term attention (``use_linear=False``): no input projections; softmax(QK^T/sqrt(d))V, projection."""

    def __init__(self, dim: int = D_MODEL, heads: int = HEADS):
        super().__init__()
        self.heads = heads
        self.projection = nn.Linear(dim, dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        return self.projection(merge_heads(F.scaled_dot_product_attention(q, k, v)))


class LocalAttention(nn.Module):
    """Short-term attention over a ``window x window`` neighbourhood with AOT's relative terms (section 1.8).

    logit(h, i, o) = (q_i / sqrt(d)) . k_{i+o} + relative_emb_k(q)[225 h + o, i];  keys outside the frame
    get probability 0; out_i = sum_o p(h, i, o) (v_{i+o} + relative_emb_v[h, :, o]), then ``projection``.
    Offsets o = (dy + 7) * 15 + (dx + 7), dy/dx = key minus query position.

    Computed densely over the ``N x N`` token pairs with the window as an additive mask (``-inf`` outside,
    which gives the original's probability 0 exactly); the value term gathers the window's probabilities
    back per offset.
    """

    def __init__(self, dim: int = D_MODEL, heads: int = HEADS, window: int = WINDOW):
        super().__init__()
        self.heads, self.window = heads, window
        area = window * window
        self.relative_emb_k = nn.Conv2d(dim, heads * area, 1, groups=heads)
        self.relative_emb_v = nn.Parameter(torch.zeros(heads, dim // heads, area))
        self.projection = nn.Linear(dim, dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, hw: tuple[int, int]) -> Tensor:
        """``q, k, v [B, h*w, dim]`` (k, v: the previous frame on the same grid) -> ``[B, h*w, dim]``."""
        B, N, C = q.shape
        h, w = hw
        area = self.window * self.window
        inside, offset = _window_index(h, w, self.window, q.device)             # [N, N] each
        rel_k = self.relative_emb_k(q.transpose(1, 2).reshape(B, C, h, w))      # [B, heads*area, h, w]
        rel_k = rel_k.view(B, self.heads, area, N).transpose(2, 3)               # [B, heads, N, area]
        bias = rel_k.gather(3, offset.expand(B, self.heads, N, N))
        bias = bias.masked_fill(~inside, float("-inf"))
        qh, kh, vh = (split_heads(t, self.heads) for t in (q, k, v))
        logits = torch.matmul(qh / math.sqrt(C // self.heads), kh.transpose(-1, -2)) + bias
        p = logits.softmax(-1)
        out = torch.matmul(p, vh)
        # probability of each window offset (outside keys have p = 0 and add nothing)
        p_off = p.new_zeros(B, self.heads, N, area).scatter_add_(3, offset.expand(B, self.heads, N, N), p)
        out = out + torch.matmul(p_off, self.relative_emb_v.transpose(1, 2))
        return self.projection(merge_heads(out))


class GNActDWConv(nn.Module):
    """The FFN's middle: GroupNorm(32) -> exact GELU -> 5x5 depthwise conv without bias, on the token grid."""

    def __init__(self, hidden: int = FFN_HIDDEN, groups: int = 32):
        super().__init__()
        self.gn = nn.GroupNorm(groups, hidden)
        self.conv = nn.Conv2d(hidden, hidden, 5, padding=2, groups=hidden, bias=False)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        B, N, C = x.shape
        y = self.conv(F.gelu(self.gn(x.transpose(1, 2).reshape(B, C, *hw))))
        return y.flatten(2).transpose(1, 2)


class LSTTLayer(nn.Module):
    """One long short-term transformer block of AOT (section 1.7); pre-norm, residual after each part."""

    def __init__(self, dim: int = D_MODEL, heads: int = HEADS, hidden: int = FFN_HIDDEN, window: int = WINDOW):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.linear_Q = nn.Linear(dim, dim)     # this frame's query AND its memory key (tied)
        self.linear_V = nn.Linear(dim, dim)     # memory value of (features + identity)
        self.long_term_attn = GlobalAttention(dim, heads)
        self.short_term_attn = LocalAttention(dim, heads, window)
        self.norm3 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, hidden)
        self.activation = GNActDWConv(hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def memory_value(self, h: Tensor, id_emb: Tensor) -> Tensor:
        """A frame's memory value ``linear_V(h + id)`` from its ``norm2`` features ``h`` and ID tokens."""
        return self.linear_V(h + id_emb)

    def forward(self, x: Tensor, pos: Tensor, hw: tuple[int, int], long_kv: tuple[Tensor, Tensor] | None = None,
                short_kv: tuple[Tensor, Tensor] | None = None, id_emb: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """``x [B, N, dim]``, ``pos [N, dim]``; memories as ``(K, V)`` ``[B, L, dim]`` (short: the previous
        frame's ``N`` tokens). With ``id_emb`` the frame attends to its own ID-fused key/value in both branches
        (AOT's reference-frame pass). Returns ``(x, key, h)``: output tokens, this frame's memory key and the
        ``norm2`` features its memory value is made from."""
        h = self.norm1(x)
        qk = h + pos
        x = x + self.self_attn(qk, qk, h)
        h = self.norm2(x)
        q = self.linear_Q(h)
        if id_emb is not None:
            long_kv = short_kv = (q, self.memory_value(h, id_emb))
        if long_kv is None or short_kv is None:
            raise ValueError("a frame without a mask needs long- and short-term memory: start a session first")
        x = x + (self.long_term_attn(q, *long_kv) + self.short_term_attn(q, *short_kv, hw))
        x = x + self.linear2(self.activation(self.linear1(self.norm3(x)), hw))
        return x, q, h


class LSTT(nn.Module):
    """``LSTT.layers`` and the per-layer output norms ``LSTT.decoder_norms`` (the last is the final norm)."""

    def __init__(self, num_layers: int = 3, dim: int = D_MODEL):
        super().__init__()
        self.layers = nn.ModuleList(LSTTLayer(dim) for _ in range(num_layers))
        self.decoder_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_layers))
