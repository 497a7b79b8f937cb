"""Long Short-Term Transformer (LSTT) block, AOT's propagation layer, on ``scaled_dot_product_attention``.

One block, pre-LayerNorm, tokens ``[B, N, C]`` of an ``h x w`` grid:

    x = x + SelfAttn(LN1(x))                       # sine PE added to q and k only
    h = LN2(x); q = Wq(h)                          # q doubles as this frame's memory key (tied Q/K)
    x = x + LongTerm(q, K_mem, V_mem) + ShortTerm(q, K_prev, V_prev)
    x = x + Wout(DWConv5x5(GELU(GN(Win(LN3(x))))))  # AOT's FFN: a depthwise conv between the linears

A frame enters memory with ``K = Wq(h)`` and ``V = Wv(h + id)``, where ``id`` is the identity embedding
of its mask; the value is computed only once the mask is known (after decoding), which is why
``forward`` hands ``h`` back to the caller.

Short-term attention looks at the previous frame only within a ``window x window`` neighbourhood of
each query's own position. It is dense SDPA with a float mask that is ``-inf`` outside the window and
holds a learned per-head relative-position bias inside it. At the grids this model sees (8x8 at 128 px,
14x14 at 224 px; stride 16) the ``[heads, N, N]`` mask is tens of kilobytes and one fused SDPA call
beats unfold/gather, which copies every key ``window**2`` times (28x slower on H100 at 1.7k tokens,
reference/propagators.md 4.3). Past ~8k tokens ``flex_attention`` with a block mask is the better tool.
AOT's query-dependent ``relative_emb_k`` is replaced by this query-independent bias, and its
``relative_emb_v`` (not expressible in SDPA) is dropped: weights are trained here, not loaded from AOT.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coprop.models.attention import MultiHeadAttention


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[B, N, C]`` -> ``[B, heads, N, C/heads]``."""
    B, N, C = x.shape
    return x.view(B, N, heads, C // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``[B, heads, N, d]`` -> ``[B, N, heads*d]``."""
    B, H, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, H * d)


# Built outside inference mode: a cached tensor first made under torch.inference_mode() could not be
# saved for backward by a later training step.
@lru_cache(maxsize=16)
@torch.inference_mode(False)
@torch.no_grad()
def _window_index(h: int, w: int, window: int, device: torch.device) -> tuple[Tensor, Tensor]:
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    r = window // 2
    dy = ys[None, :] - ys[:, None]                                      # key row - query row
    dx = xs[None, :] - xs[:, None]
    inside = (dy.abs() <= r) & (dx.abs() <= r)
    offset = ((dy.clamp(-r, r) + r) * window + (dx.clamp(-r, r) + r))   # index into the bias table
    return inside, offset


def window_bias(table: Tensor, h: int, w: int, window: int, dtype: torch.dtype) -> Tensor:
    """``table [heads, window*window]`` -> SDPA float mask ``[heads, N, N]``: bias inside, -inf outside."""
    inside, offset = _window_index(h, w, window, table.device)
    bias = table[:, offset].to(dtype)
    return bias.masked_fill(~inside, float("-inf"))


class ConvFFN(nn.Module):
    """AOT's feed-forward: Linear -> GroupNorm -> GELU -> depthwise 5x5 conv -> Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.norm = nn.GroupNorm(math.gcd(32, hidden), hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 5, padding=2, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        B, N, _ = x.shape
        y = self.fc1(x).transpose(1, 2).reshape(B, -1, *hw)
        y = self.dwconv(F.gelu(self.norm(y)))
        return self.fc2(y.flatten(2).transpose(1, 2))


class LSTTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, ffn_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"short-term window must be a positive odd number, got {window}")
        self.heads, self.window = heads, window
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim)        # also the memory key projection (tied Q/K)
        self.to_v = nn.Linear(dim, dim)        # memory value projection of (features + identity)
        self.long_out = nn.Linear(dim, dim)
        self.short_out = nn.Linear(dim, dim)
        self.rel_bias = nn.Parameter(torch.zeros(heads, window * window))
        self.norm3 = nn.LayerNorm(dim)
        self.ffn = ConvFFN(dim, ffn_mult * dim)
        self.drop = nn.Dropout(dropout)

    def _short_term_mask(self, hw: tuple[int, int], dtype: torch.dtype) -> Tensor:
        """``window_bias`` of this block; without autograd it is kept until the bias table changes (inference
        calls it once per frame and layer, and at a 16x16 grid building it cost ~8 % of a propagation step)."""
        if torch.is_grad_enabled() and self.rel_bias.requires_grad:
            return window_bias(self.rel_bias, hw[0], hw[1], self.window, dtype)
        key = (hw, dtype, self.rel_bias.device, self.rel_bias._version, self.rel_bias.data_ptr())
        cached = getattr(self, "_mask_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                self._mask_cache = (key, window_bias(self.rel_bias, hw[0], hw[1], self.window, dtype))
        return self._mask_cache[1]

    def memory_value(self, h: Tensor, id_emb: Tensor) -> Tensor:
        """This frame's memory value ``[B, heads, N, d]`` from its ``h`` and identity embedding ``[B, N, C]``."""
        return split_heads(self.to_v(h + id_emb), self.heads)

    def forward(self, x: Tensor, pos: Tensor, hw: tuple[int, int],
                long_kv: tuple[Tensor, Tensor] | None, short_kv: tuple[Tensor, Tensor] | None,
                id_emb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Propagate one frame.

        ``long_kv`` / ``short_kv``: ``(K, V)`` as ``[B, heads, L, d]``; ``short_kv`` covers the previous
        frame's ``h*w`` grid. With ``id_emb`` (a frame whose mask is known: the keyframe), the frame's
        own key/value are made here and attended to in both branches ("self-matching", AOT's
        reference-frame pass), in addition to any ``long_kv``.

        Returns ``(x, key, h, value)``: the output tokens, this frame's memory key, the normalised
        features ``h`` needed for its value later, and the value when ``id_emb`` was given.
        """
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h, q_pos=pos, k_pos=pos))
        h = self.norm2(x)
        q = split_heads(self.to_q(h), self.heads)
        value = None
        if id_emb is not None:
            value = self.memory_value(h, id_emb)
            own = (q, value)
            long_kv = own if long_kv is None else (torch.cat([long_kv[0], q], 2), torch.cat([long_kv[1], value], 2))
            short_kv = own
        if long_kv is None or short_kv is None:
            raise ValueError("a frame without a known mask needs long- and short-term memory: call start() first")
        out = self.long_out(merge_heads(F.scaled_dot_product_attention(q, *long_kv)))
        mask = self._short_term_mask(hw, q.dtype)
        out = out + self.short_out(merge_heads(F.scaled_dot_product_attention(q, *short_kv, attn_mask=mask)))
        x = x + self.drop(out)
        x = x + self.drop(self.ffn(self.norm3(x), hw))
        return x, q, h, value
