"""TPAVI on coprop's inputs: per-frame log-mel examples through one frozen VGGish, clips of any length.

    seg = tpavi_segmenter("tpavi_pvtb5_ms3", "MS3_pvt_best.pth", vggish=kp.audio_encoder.vggish)
    logits = seg(frames[None], logmel[None])[0]          # [T,3,224,224], [T,1,96,64] -> [T,1,224,224]
    pipe = CoProp(seg, propagator)                        # TPAVI as the plug-in keyframe model (paper Fig. 4)

The same call signature as coprop's SimultaneousBaseline (``forward(frames [B,T,3,S,S], audio [B,T,1,96,64])``),
so TPAVI stands in as the simultaneous "existing method" baseline too. AVSBench feeds TPAVI the 128-d VGGish
embedding (post-ReLU, no PCA) of each frame's 0.96 s log-mel example; coprop's ``VGGish`` gives exactly that,
and one frozen copy can serve every model of a pipeline (``vggish=`` here, ``share_vggish`` in CoProp).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from coprop.errors import ConfigError
from coprop.models.audio_encoder import VGGish, as_logmel_examples, load_vggish, resolve_audio_weights
from coprop.models.config import ModelConfig
from coprop.models.published.tpavi import TPAVI
from coprop.models.published.tpavi_blocks import TPAVI_WINDOW


class TPAVISegmenter(nn.Module):
    """forward(frames [B,T,3,S,S] float32, audio [B,T,1,96,64] log-mel, text_labels=None) -> logits [B,T,K,S,S].

    ``frames``: ImageNet-normalised (coprop.models.common.prepare_frames), S a multiple of 32 (224 as
    released). TPAVI works on windows of exactly 5 frames, so each clip is padded to a multiple of 5 and the
    padding's logits are dropped: AVSS models pad as the AVSS dataset does (all-zero frames, zero audio,
    temporal flag 0, which zeroes their features); the binary S4/MS3 models, which never saw padding, repeat
    the last frame and its audio. K = 1 (logit) or 71 (AVSS classes). Raises ValueError without audio and
    ConfigError when text labels are given (TPAVI is audio-guided only).
    """

    def __init__(self, tpavi: TPAVI, vggish: VGGish, image_size: int = 224):
        super().__init__()
        if image_size % 32:
            raise ConfigError(f"TPAVI image_size must be a multiple of 32, got {image_size}")
        self.tpavi = tpavi
        self.vggish = vggish.requires_grad_(False).eval()
        v = tpavi.variant
        # what CoProp reads from a keyframe model: its input size and its output channels
        self.cfg = ModelConfig(name=v.name, image_size=image_size, num_classes=v.num_classes, backbone=v.backbone,
                               audio_encoder="vggish", audio_tokens=24, pretrained=True)
        self.eval()  # as load_published returns TPAVI

    def train(self, mode: bool = True):
        super().train(mode)
        self.vggish.eval()  # frozen, as in AVSBench
        return self

    @torch.no_grad()
    def embed_audio(self, logmel: Tensor) -> Tensor:
        """Log-mel examples [N,1,96,64] -> VGGish embeddings [N,128] (what AVSBench stores per frame)."""
        return self.vggish(as_logmel_examples(logmel))[1]

    def forward(self, frames: Tensor, audio: Tensor | None = None, text_labels: Tensor | None = None) -> Tensor:
        if text_labels is not None:
            raise ConfigError(f"{self.cfg.name} is audio-guided; it cannot take text labels")
        if audio is None:
            raise ValueError(f"{self.cfg.name} needs each frame's log-mel example: audio [B,T,1,96,64]")
        if frames.ndim != 5 or audio.shape[:2] != frames.shape[:2]:
            raise ValueError(f"{self.cfg.name}: frames [B,T,3,S,S] and audio [B,T,1,96,64] expected, got "
                             f"{tuple(frames.shape)} and {tuple(audio.shape)}")
        B, T = frames.shape[:2]
        emb = self.embed_audio(audio.flatten(0, 1)).view(B, T, -1)
        pad = (-T) % TPAVI_WINDOW
        avss = self.tpavi.num_classes > 1
        flag = torch.ones(B, T + pad, device=frames.device, dtype=frames.dtype)
        if pad and avss:
            frames = torch.cat([frames, frames.new_zeros(B, pad, *frames.shape[2:])], 1)
            emb = torch.cat([emb, emb.new_zeros(B, pad, emb.shape[-1])], 1)
            flag[:, T:] = 0
        elif pad:
            frames = torch.cat([frames, frames[:, -1:].expand(-1, pad, -1, -1, -1)], 1)
            emb = torch.cat([emb, emb[:, -1:].expand(-1, pad, -1)], 1)
        # windows never span two clips, so the whole batch is one call
        flag = flag.flatten()
        logits = self.tpavi(frames.flatten(0, 1), emb.flatten(0, 1) * flag[:, None], flag if avss else None)
        return logits.view(B, T + pad, *logits.shape[1:])[:, :T]

    def predict_frames(self, images: Tensor, audio: Tensor | None = None, text_labels: Tensor | None = None) -> Tensor:
        """One clip: images [T,3,S,S], audio [T,1,96,64] -> logits [T,K,S,S]."""
        return self(images[None], None if audio is None else audio[None], text_labels)[0]


def tpavi_segmenter(name: str, checkpoint, vggish: VGGish | str | Path | None = None, *,
                    allow_random_vggish: bool = False, image_size: int = 224) -> TPAVISegmenter:
    """The published TPAVI ``name`` (weights from ``checkpoint``, see ``load_published``) on log-mel input.

    ``vggish``: a loaded VGGish to share (e.g. ``keyframe_processor.audio_encoder.vggish``), a path to
    ``vggish-10086976.pth``, or None for that file in coprop.models.common.pretrained_dir(). A missing file is a
    WeightsError naming it and where it comes from, unless ``allow_random_vggish`` (tests only).
    """
    from coprop.models.published import load_published

    if not isinstance(vggish, nn.Module):
        cfg = ModelConfig(audio_encoder="vggish", audio_tokens=24, pretrained=True,
                          audio_weights=None if vggish is None else str(vggish))
        vggish = load_vggish(resolve_audio_weights(cfg, allow_random=allow_random_vggish))
    return TPAVISegmenter(load_published(name, checkpoint), vggish, image_size)


__all__ = ["TPAVISegmenter", "tpavi_segmenter"]
