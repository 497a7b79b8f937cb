"""Audio insertion (paper eq. 6): video tokens attend to the current frame's audio tokens.

    F~ = LN(F + Wo * Softmax((F Wq)(A Wk)^T / sqrt(d_head)) (A Wv))

The query is a level of the frame's feature pyramid, key and value are that frame's audio tokens. With
a single audio token the softmax would be identically 1 and the block would degenerate to adding a
constant, so the guidance is always several tokens (cfg.audio_tokens).

``GuidanceTokens`` supplies those tokens: from the audio encoder (``cfg.guidance='audio'``), or from a
learned embedding of a category label (``cfg.guidance='text'``, paper Table 4) -- a configuration, the
rest of the propagator is the same. When a frame has no guidance (``audio=None``) a learned set of
"no guidance" tokens stands in, so the features keep the distribution the later layers were trained on.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from coprop.errors import ConfigError
from coprop.models.config import ModelConfig
from coprop.models.attention import MultiHeadAttention


class AudioInsert(nn.Module):
    """Cross-attention from a feature map ``[B, C, H, W]`` to guidance tokens ``[B, N, C]``, residual + norm."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"audio insertion width {dim} is not divisible by {heads} heads")
        self.attn = MultiHeadAttention(dim, heads)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, feat: Tensor, tokens: Tensor) -> Tensor:
        B, C, H, W = feat.shape
        x = feat.flatten(2).transpose(1, 2)
        x = self.norm(x + self.drop(self.attn(x, tokens)))
        return x.transpose(1, 2).reshape(B, C, H, W)


class GuidanceTokens(nn.Module):
    """Audio log-mel ``[B, 1, 96, 64]`` (or text labels ``[B]``) -> guidance tokens ``[B, N, dim]``."""

    def __init__(self, cfg: ModelConfig, allow_random: bool = False, vggish: nn.Module | None = None):
        super().__init__()
        self.kind = cfg.guidance
        self.dim = cfg.dim
        if cfg.guidance == "audio":
            from coprop.models.audio_encoder import build_audio_encoder

            self.audio = build_audio_encoder(cfg, allow_random=allow_random, vggish=vggish)
            self.num_tokens = cfg.audio_tokens
        elif cfg.guidance == "text":
            if cfg.num_text_labels < 1:
                raise ConfigError("guidance='text' needs num_text_labels >= 1 (the label vocabulary size)")
            self.num_tokens = max(2, cfg.audio_tokens)
            self.labels = nn.Embedding(cfg.num_text_labels, self.num_tokens * cfg.dim)
            nn.init.normal_(self.labels.weight, std=0.02)
        else:
            raise ConfigError(f"unknown guidance {cfg.guidance!r}; choose 'audio' or 'text'")
        self.null = nn.Parameter(torch.zeros(self.num_tokens, cfg.dim))

    def forward(self, batch: int, audio: Tensor | None = None, text_labels: Tensor | None = None) -> Tensor:
        if self.kind == "audio" and audio is not None:
            tokens, _ = self.audio(audio)
            return tokens
        if self.kind == "text" and text_labels is not None:
            labels = torch.as_tensor(text_labels, device=self.labels.weight.device).long().reshape(-1)
            if labels.numel() != batch:
                raise ValueError(f"{labels.numel()} text labels for a batch of {batch}")
            if labels.min() < 0 or labels.max() >= self.labels.num_embeddings:
                raise ConfigError(f"text label ids must be in 0..{self.labels.num_embeddings - 1}, "
                                  f"got {labels.tolist()}")
            return self.labels(labels).view(batch, self.num_tokens, self.dim)
        return self.null.expand(batch, -1, -1)
