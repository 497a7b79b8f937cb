"""Keyframe Processor (paper 3.3): an audio-guided single-image segmenter.

backbone -> 4 levels; the deepest level's tokens are concatenated with the audio tokens and fused by a
transformer encoder; an FPN over the (fused) levels gives per-pixel features; audio-derived queries (one per
output channel) attend to the fused tokens and are dot-producted with the per-pixel features -> mask logits.
``cfg.guidance='text'`` replaces the audio tokens by learned embeddings of a category label (paper Table 4).
"""
from __future__ import annotations

import torch
from torch import nn

from coprop.errors import ConfigError
from coprop.models.attention import QueryDecoderLayer, SelfAttentionLayer, sine_embedding_2d
from coprop.models.audio_encoder import build_audio_encoder, resolve_audio_weights
from coprop.models.backbones import build_backbone
from coprop.models.common import resize_logits
from coprop.models.config import ModelConfig, get_config
from coprop.models.decoder import FPNDecoder, QueryMaskHead


class KeyframeProcessor(nn.Module):
    """forward(image [B,3,S,S], audio [B,1,96,64] | None, text_labels [B] | None) -> logits [B,K,S,S]."""

    def __init__(self, cfg: ModelConfig | str = "tiny", allow_random: bool = False, vggish: nn.Module | None = None):
        """``vggish``: a loaded frozen VGGish to share with the pipeline's other models (audio_encoder='vggish')."""
        super().__init__()
        cfg = get_config(cfg)
        self.cfg, dim = cfg, cfg.dim
        if cfg.guidance == "audio" and vggish is None:  # fail on a missing weight file before a large construction
            resolve_audio_weights(cfg, allow_random)
        self.backbone = build_backbone(cfg, allow_random=allow_random)
        chans = self.backbone.channels
        if cfg.guidance == "audio":
            self.audio_encoder = build_audio_encoder(cfg, allow_random=allow_random, vggish=vggish)
            self.num_guide_tokens = self.audio_encoder.num_tokens
        elif cfg.guidance == "text":
            if cfg.num_text_labels < 1:
                raise ConfigError("guidance='text' needs num_text_labels >= 1 (the size of the label vocabulary)")
            self.num_guide_tokens = cfg.audio_tokens
            self.text_embed = nn.Embedding(cfg.num_text_labels, cfg.audio_tokens * dim)
            self.text_norm = nn.LayerNorm(dim)
        else:
            raise ConfigError(f"unknown guidance {cfg.guidance!r}; choose 'audio' or 'text'")
        self.deep_proj = nn.Conv2d(chans[-1], dim, 1)
        self.type_embed = nn.Parameter(torch.randn(2, dim) * 0.02)  # 0 = image token, 1 = guidance token
        self.fusion = nn.ModuleList(SelfAttentionLayer(dim, cfg.heads, cfg.dropout)
                                    for _ in range(cfg.fusion_layers))
        self.fusion_norm = nn.LayerNorm(dim)
        self.fpn = FPNDecoder(list(chans[:-1]) + [dim], dim)
        self.query_embed = nn.Parameter(torch.randn(cfg.num_classes, dim) * 0.02)
        self.query_from_guide = nn.Linear(dim, dim)
        self.query_layers = nn.ModuleList(QueryDecoderLayer(dim, cfg.heads, cfg.dropout)
                                          for _ in range(max(1, cfg.fusion_layers)))
        self.mask_head = QueryMaskHead(dim, cfg.num_classes)

    # ---- stages shared with the simultaneous baseline -----------------------------------------------------

    def guidance(self, audio: torch.Tensor | None, text_labels: torch.Tensor | None):
        """-> (tokens [N, Na, dim], pooled [N, dim]) from log-mel examples or from category label ids."""
        if self.cfg.guidance == "text":
            if text_labels is None:
                raise ValueError("this KeyframeProcessor is text-guided (cfg.guidance='text'): pass text_labels")
            tokens = self.text_norm(self.text_embed(text_labels.long()).view(len(text_labels),
                                                                           self.num_guide_tokens, -1))
            return tokens, tokens.mean(1)
        if audio is None:
            raise ValueError("this KeyframeProcessor is audio-guided: pass audio log-mel examples [B,1,96,64]")
        return self.audio_encoder(audio)

    def visual_tokens(self, feats: list[torch.Tensor]):
        """Deepest level -> (tokens [N, h*w, dim] with position and type embedded, (h, w))."""
        deep = self.deep_proj(feats[-1])
        h, w = deep.shape[-2:]
        pos = sine_embedding_2d(h, w, self.cfg.dim, device=deep.device).to(deep.dtype)
        return deep.flatten(2).transpose(1, 2) + pos + self.type_embed[0], (h, w)

    def fuse(self, vis: torch.Tensor, guide: torch.Tensor):
        """Joint transformer encoder over [image tokens ; guidance tokens] -> both, fused."""
        x = torch.cat([vis, guide + self.type_embed[1]], dim=1)
        for layer in self.fusion:
            x = layer(x)
        x = self.fusion_norm(x)
        return x[:, :vis.shape[1]], x[:, vis.shape[1]:]

    def decode(self, feats: list[torch.Tensor], fused_vis: torch.Tensor, fused_guide: torch.Tensor,
               pooled: torch.Tensor, hw: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
        """Audio-queried decoding -> logits [N, K, *out_size]."""
        n = fused_vis.shape[0]
        deep = fused_vis.transpose(1, 2).reshape(n, -1, *hw)
        pixel = self.fpn(list(feats[:-1]) + [deep])
        queries = self.query_embed[None] + self.query_from_guide(pooled)[:, None]
        memory = torch.cat([fused_vis, fused_guide], dim=1)
        for layer in self.query_layers:
            queries = layer(queries, memory)
        return resize_logits(self.mask_head(queries, pixel), out_size)

    def forward(self, image: torch.Tensor, audio: torch.Tensor | None = None,
                text_labels: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.backbone(image)
        guide, pooled = self.guidance(audio, text_labels)
        vis, hw = self.visual_tokens(feats)
        fused_vis, fused_guide = self.fuse(vis, guide)
        return self.decode(feats, fused_vis, fused_guide, pooled, hw, image.shape[-2:])
