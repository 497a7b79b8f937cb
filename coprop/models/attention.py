"""Attention blocks on ``scaled_dot_product_attention``: multi-head attention (q from one tensor, k/v from
another), pre-norm self/cross-attention layers, FFN, and sine position embeddings.

Mask convention: ``key_padding_mask`` is bool [B, Nk] with True = PADDING (ignored), as in nn.MultiheadAttention;
it is converted to SDPA's polarity (True = attend) here, once. ``attn_mask`` is passed to SDPA unchanged
(bool True = attend, or an additive float bias), shaped to broadcast against [B, heads, Nq, Nk].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """Multi-head attention; positional embeddings are added to queries and keys only, never to values."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        kv_dim = kv_dim or dim
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim, dim)
        self.v = nn.Linear(kv_dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.view(B, N, self.heads, C // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *, q_pos: torch.Tensor | None = None,
                k_pos: torch.Tensor | None = None, key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B,Nq,dim] attends to context [B,Nk,kv_dim] (default: x itself) -> [B,Nq,dim]."""
        context = x if context is None else context
        q = self.q(x if q_pos is None else x + q_pos)
        k = self.k(context if k_pos is None else context + k_pos)
        v = self.v(context)
        mask = attn_mask
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()[:, None, None, :]
            if mask is None:
                mask = keep
            elif mask.dtype == torch.bool:
                mask = mask & keep
            else:
                mask = torch.where(keep, mask, torch.full((), float("-inf"), dtype=mask.dtype, device=mask.device))
        y = F.scaled_dot_product_attention(self._split(q), self._split(k), self._split(v), attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        B, _, Nq, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(B, Nq, -1))


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        hidden = hidden or 4 * dim
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfAttentionLayer(nn.Module):
    """Pre-norm transformer encoder layer: x + SelfAttn(LN x), then + FFN(LN x)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, ffn_hidden: int | None = None):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), MultiHeadAttention(dim, heads, dropout=dropout)
        self.norm2, self.ffn = nn.LayerNorm(dim), FFN(dim, ffn_hidden, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None):
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, q_pos=pos, k_pos=pos, key_padding_mask=key_padding_mask,
                                    attn_mask=attn_mask))
        return x + self.drop(self.ffn(self.norm2(x)))


class CrossAttentionLayer(nn.Module):
    """Pre-norm residual cross-attention: x + Attn(LN x, LN context); no FFN (compose with FFNLayer)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(kv_dim or dim)
        self.attn = MultiHeadAttention(dim, heads, kv_dim=kv_dim, dropout=dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, context, q_pos=None, k_pos=None, key_padding_mask=None, attn_mask=None):
        y = self.attn(self.norm_q(x), self.norm_kv(context), q_pos=q_pos, k_pos=k_pos,
                      key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        return x + self.drop(y)


class FFNLayer(nn.Module):
    def __init__(self, dim: int, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm, self.ffn, self.drop = nn.LayerNorm(dim), FFN(dim, hidden, dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.ffn(self.norm(x)))


class QueryDecoderLayer(nn.Module):
    """Mask2Former-style query layer: cross-attention to memory, self-attention among queries, FFN."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.cross = CrossAttentionLayer(dim, heads, dropout=dropout)
        self.self_attn = SelfAttentionLayer(dim, heads, dropout)

    def forward(self, queries, memory, query_pos=None, memory_pos=None, memory_padding_mask=None):
        queries = self.cross(queries, memory, q_pos=query_pos, k_pos=memory_pos,
                             key_padding_mask=memory_padding_mask)
        return self.self_attn(queries, pos=query_pos)


def sine_embedding_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) positions [...] -> [..., dim]."""
    half = dim // 2
    freqs = temperature ** (-torch.arange(half, device=positions.device, dtype=torch.float32) / max(half, 1))
    angles = positions.float()[..., None] * freqs
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dim - emb.shape[-1]))


def sine_embedding_2d(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """DETR-style 2-D sine embedding of an h x w grid, normalised to [0, 2*pi] -> [h*w, dim]."""
    ys = torch.linspace(0, 2 * math.pi, h, device=device) if h > 1 else torch.zeros(1, device=device)
    xs = torch.linspace(0, 2 * math.pi, w, device=device) if w > 1 else torch.zeros(1, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    ey = sine_embedding_1d(gy.reshape(-1), dim // 2)
    ex = sine_embedding_1d(gx.reshape(-1), dim - dim // 2)
    return torch.cat([ey, ex], dim=-1)
