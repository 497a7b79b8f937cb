"""The simultaneous baseline: the "existing method" (TPAVI / AVSegFormer style) that fuses a whole clip at once.

Every frame's image tokens and every frame's audio tokens go through ONE joint transformer encoder (each
visual token attends to all T frames' audio and to the other frames' visual tokens), then each frame is
decoded. Its activations and attention grow with T, which is the cost Co-Prop avoids. It reuses the
Keyframe Processor's stages (same backbone, audio encoder, decoder), adding a temporal embedding.
"""
from __future__ import annotations

import torch
from torch import nn

from coprop.models.attention import sine_embedding_1d
from coprop.models.config import ModelConfig
from coprop.models.keyframe import KeyframeProcessor


class SimultaneousBaseline(KeyframeProcessor):
    """forward(frames [B,T,3,S,S], audio [B,T,1,96,64], text_labels [B,T] | None) -> logits [B,T,K,S,S]."""

    def __init__(self, cfg: ModelConfig | str = "tiny", allow_random: bool = False, vggish: nn.Module | None = None):
        super().__init__(cfg, allow_random=allow_random, vggish=vggish)
        self.time_scale = nn.Parameter(torch.ones(()))

    def forward(self, frames: torch.Tensor, audio: torch.Tensor | None = None,
                text_labels: torch.Tensor | None = None) -> torch.Tensor:
        if frames.ndim != 5:
            raise ValueError(f"SimultaneousBaseline expects frames [B,T,3,S,S], got {tuple(frames.shape)}")
        B, T = frames.shape[:2]
        feats = self.backbone(frames.flatten(0, 1))
        guide, pooled = self.guidance(None if audio is None else audio.flatten(0, 1),
                                      None if text_labels is None else text_labels.reshape(-1))
        vis, hw = self.visual_tokens(feats)
        t_emb = self.time_scale * sine_embedding_1d(torch.arange(T, device=frames.device), self.cfg.dim)
        t_emb = t_emb.to(vis.dtype)[None, :, None]  # [1,T,1,dim]
        nv, na = vis.shape[1], guide.shape[1]
        vis_clip = (vis.view(B, T, nv, -1) + t_emb).flatten(1, 2)
        guide_clip = (guide.view(B, T, na, -1) + t_emb).flatten(1, 2)
        fused_vis, fused_guide = self.fuse(vis_clip, guide_clip)
        fused_vis = fused_vis.reshape(B * T, nv, -1)
        fused_guide = fused_guide.reshape(B * T, na, -1)
        logits = self.decode(feats, fused_vis, fused_guide, pooled, hw, frames.shape[-2:])
        return logits.view(B, T, *logits.shape[1:])

    def predict_frames(self, images: torch.Tensor, audio: torch.Tensor | None = None,
                       text_labels: torch.Tensor | None = None) -> torch.Tensor:
        """One clip, jointly: images [T,3,S,S], audio [T,1,96,64] -> logits [T,K,S,S] (plug-and-play keyframes
        are then picked from this clip-level output, as the paper's Fig. 4 does with existing methods)."""
        return self(images[None], None if audio is None else audio[None],
                    None if text_labels is None else text_labels[None])[0]

    def as_keyframe_model(self) -> "FramewiseBaseline":
        """The keyframe-model interface (one image + its audio -> mask) over this baseline, sharing weights."""
        return FramewiseBaseline(self)


class FramewiseBaseline(nn.Module):
    """forward(image [B,3,S,S], audio [B,1,96,64], text_labels [B] | None) -> [B,K,S,S]: each image is a 1-frame
    clip of the wrapped baseline, so it can stand where a KeyframeProcessor is expected."""

    def __init__(self, baseline: SimultaneousBaseline):
        super().__init__()
        self.baseline = baseline
        self.cfg = baseline.cfg

    def forward(self, image: torch.Tensor, audio: torch.Tensor | None = None,
                text_labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.baseline(image[:, None], None if audio is None else audio[:, None],
                            None if text_labels is None else text_labels[:, None])
        return out[:, 0]
