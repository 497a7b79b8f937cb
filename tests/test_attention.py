"""Shared SDPA attention blocks: agree with an explicit softmax, honour key padding, keep v free of positions."""
from __future__ import annotations

import torch

from coprop.models.attention import (CrossAttentionLayer, MultiHeadAttention, QueryDecoderLayer,
                                     SelfAttentionLayer, sine_embedding_1d, sine_embedding_2d)


def _reference(mha: MultiHeadAttention, x, ctx, q_pos, k_pos, pad):
    B, Nq, C = x.shape
    h, d = mha.heads, C // mha.heads
    q = mha.q(x + q_pos).view(B, Nq, h, d).transpose(1, 2)
    k = mha.k(ctx + k_pos).view(B, -1, h, d).transpose(1, 2)
    v = mha.v(ctx).view(B, -1, h, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / d ** 0.5
    logits = logits.masked_fill(pad[:, None, None, :], float("-inf"))
    y = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, Nq, C)
    return mha.out(y)


def test_cross_attention_matches_explicit_softmax_with_padding():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, kv_dim=24)
    x, ctx = torch.randn(2, 5, 32), torch.randn(2, 7, 24)
    q_pos, k_pos = torch.randn(2, 5, 32), torch.randn(2, 7, 24)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[0, 5:] = True
    pad[1, 0] = True
    y = mha(x, ctx, q_pos=q_pos, k_pos=k_pos, key_padding_mask=pad)
    torch.testing.assert_close(y, _reference(mha, x, ctx, q_pos, k_pos, pad), rtol=1e-5, atol=1e-5)
    ctx2 = ctx.clone()
    ctx2[0, 5:] = 100.0  # padded keys/values must not matter
    torch.testing.assert_close(mha(x, ctx2, q_pos=q_pos, k_pos=k_pos, key_padding_mask=pad), y)
    # a float bias combined with padding
    bias = torch.zeros(5, 7)
    torch.testing.assert_close(mha(x, ctx, q_pos=q_pos, k_pos=k_pos, key_padding_mask=pad, attn_mask=bias), y)


def test_layers_keep_shapes_and_train():
    torch.manual_seed(0)
    x, mem = torch.randn(2, 6, 16), torch.randn(2, 9, 16)
    for layer, args in [(SelfAttentionLayer(16, 2), (x,)), (CrossAttentionLayer(16, 2), (x, mem)),
                        (QueryDecoderLayer(16, 2), (x, mem))]:
        y = layer(*args)
        assert y.shape == x.shape
        y.square().mean().backward()
        assert all(p.grad is not None for p in layer.parameters())


def test_sine_embeddings():
    e1 = sine_embedding_1d(torch.arange(10), 16)
    assert e1.shape == (10, 16) and len({tuple(r.tolist()) for r in e1.round(decimals=4)}) == 10
    e2 = sine_embedding_2d(3, 4, 32)
    assert e2.shape == (12, 32) and torch.unique(e2, dim=0).shape[0] == 12
