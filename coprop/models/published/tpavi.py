"""TPAVI (AVSBench's ``Pred_endecoder``) exactly as released, for the four published configurations.

    model = load_published("tpavi_pvtb5_ms3", "MS3_pvt_best.pth")
    logits = model(frames, audio)                       # [T,3,224,224], [T,128] -> [T,1,224,224]
    logits = model(frames, audio * flag[:, None], flag) # AVSS: T=10, flag [T] -> [T,71,224,224]

Released configurations (``tpavi_stages=[0,1,2,3]``, ``tpavi_va_flag=True``, ``tpavi_vv_flag=False``):
S4 ResNet-50 and MS3 PVT-v2-b5 (1 channel, ``align_channel`` with bias), AVSS ResNet-50 / PVT-v2-b5 (71 classes,
``align_channel`` without bias, the temporal flag). Semantics that change numbers (shared/reference/aot-tpavi.md
section 0 item 6): the "dot" TPAVI block divides by N without softmax; T is fixed to 5 (an AVSS clip of 10 frames
is two independent windows); the decoder's residual units add the rectified input; the head upsamples with
align_corners=False while the fusion blocks use True.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from coprop.errors import ConfigError
from coprop.models.published.tpavi_backbones import build_backbone
from coprop.models.published.tpavi_blocks import (TPAVI_WINDOW, DilatedClassifier, FusionBlock, TPAVIBlock,
                                                  from_windows, output_head, to_windows)

AVSS_CLASSES = 71  # AVSBench-semantic: background + 70 categories


@dataclass(frozen=True)
class TPAVIVariant:
    name: str
    backbone: str          # 'resnet50' (as resnet.*) or 'pvt_v2_b5' (as encoder_backbone.*)
    num_classes: int       # 1 = binary logit (S4/MS3), 71 = AVSS
    align_bias: bool       # S4/MS3 align_channel has a bias, AVSS's has none
    setting: str           # 's4', 'ms3' or 'avss'


TPAVI_VARIANTS: dict[str, TPAVIVariant] = {
    "tpavi_r50_s4": TPAVIVariant("tpavi_r50_s4", "resnet50", 1, True, "s4"),
    "tpavi_pvtb5_ms3": TPAVIVariant("tpavi_pvtb5_ms3", "pvt_v2_b5", 1, True, "ms3"),
    "tpavi_r50_avss": TPAVIVariant("tpavi_r50_avss", "resnet50", AVSS_CLASSES, False, "avss"),
    "tpavi_pvtb5_avss": TPAVIVariant("tpavi_pvtb5_avss", "pvt_v2_b5", AVSS_CLASSES, False, "avss"),
}


def tpavi_variant(name: str) -> TPAVIVariant:
    if name not in TPAVI_VARIANTS:
        raise ConfigError(f"unknown TPAVI model {name!r}; choose one of {sorted(TPAVI_VARIANTS)}")
    return TPAVI_VARIANTS[name]


class TPAVI(nn.Module):
    """forward(frames [T,3,H,W] float32, audio [T,128] float32, temporal_flag [T] | None) -> logits [T,K,H,W].

    ``frames``: ImageNet-normalised RGB (ToTensor then Normalize, float32), H and W multiples of 32 (224 as
    released); T a multiple of 5 (frames t..t+4 form one TPAVI window). ``audio``: 128-d VGGish embeddings
    (post-ReLU, no PCA), one per frame. ``temporal_flag`` (AVSS): 1 for real frames, 0 for padding; it
    multiplies the stage maps, TPAVI outputs, fusion outputs and logits, so padded frames get zero logits. As
    in the AVSS test script the caller multiplies ``audio`` by the flag. K = 1 (logit; mask = logit > 0) or 71.
    Raises ValueError on wrong shapes.
    """

    def __init__(self, variant: TPAVIVariant | str):
        super().__init__()
        v = tpavi_variant(variant) if isinstance(variant, str) else variant
        self.variant = v
        backbone = build_backbone(v.backbone)
        # the attribute name is the released key prefix; registration order = the file's key order
        if v.backbone == "resnet50":
            self.resnet = backbone
        else:
            self.encoder_backbone = backbone
        chans = backbone.channels
        self.conv4 = DilatedClassifier(chans[3])
        self.conv3 = DilatedClassifier(chans[2])
        self.conv2 = DilatedClassifier(chans[1])
        self.conv1 = DilatedClassifier(chans[0])
        self.path4, self.path3, self.path2, self.path1 = (FusionBlock() for _ in range(4))
        for i in range(1, 5):
            setattr(self, f"tpavi_b{i}", TPAVIBlock(align_bias=v.align_bias))
        self.output_conv = output_head(v.num_classes)

    @property
    def num_classes(self) -> int:
        return self.variant.num_classes

    def _check(self, frames: Tensor, audio: Tensor, flag: Tensor | None) -> None:
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[-1] % 32 or frames.shape[-2] % 32:
            raise ValueError(f"{self.variant.name}: frames must be [T,3,H,W] with H, W multiples of 32 "
                             f"(224 as released), got {tuple(frames.shape)}")
        T = frames.shape[0]
        if T % TPAVI_WINDOW:
            raise ValueError(f"{self.variant.name}: T={T} frames; TPAVI processes windows of exactly "
                             f"{TPAVI_WINDOW} frames, so T must be a multiple of {TPAVI_WINDOW} (pad the clip)")
        if tuple(audio.shape) != (T, 128):
            raise ValueError(f"{self.variant.name}: audio must be [T,128] VGGish embeddings for T={T}, "
                             f"got {tuple(audio.shape)}")
        if flag is not None and flag.numel() != T:
            raise ValueError(f"{self.variant.name}: temporal_flag must hold T={T} values, got {flag.numel()}")

    def forward(self, frames: Tensor, audio: Tensor, temporal_flag: Tensor | None = None) -> Tensor:
        self._check(frames, audio, temporal_flag)
        flag = None if temporal_flag is None else temporal_flag.to(frames.dtype).reshape(-1, 1, 1, 1)

        def masked(x: Tensor) -> Tensor:
            return x if flag is None else x * flag

        backbone = self.resnet if self.variant.backbone == "resnet50" else self.encoder_backbone
        x1, x2, x3, x4 = backbone(frames)
        stages = [masked(self.conv1(x1)), masked(self.conv2(x2)), masked(self.conv3(x3)), masked(self.conv4(x4))]
        windows = audio.reshape(-1, TPAVI_WINDOW, audio.shape[-1])
        for i in range(4):
            out, _ = getattr(self, f"tpavi_b{i + 1}")(to_windows(stages[i]), windows)
            stages[i] = masked(from_windows(out))
        d = masked(self.path4(stages[3]))
        d = masked(self.path3(d, stages[2]))
        d = masked(self.path2(d, stages[1]))
        d = masked(self.path1(d, stages[0]))
        return masked(self.output_conv(d))


def build_tpavi(name: str) -> TPAVI:
    """The bare TPAVI model ``name`` (random weights; ``load_published`` fills it from a checkpoint)."""
    return TPAVI(name)


__all__ = ["AVSS_CLASSES", "TPAVI", "TPAVIVariant", "TPAVI_VARIANTS", "build_tpavi",
           "tpavi_variant"]
