"""Model configurations: ``tiny`` (CPU, random init) and ``paper`` (full size, local weight files).

One dataclass shared by every model so a run folder can store a single config and rebuild all of it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from coprop.errors import ConfigError


@dataclass
class ModelConfig:
    name: str = "tiny"
    image_size: int = 128                  # square input resolution of every model
    num_classes: int = 1                   # 1 = binary (S4/MS3), 71 = AVSS semantic
    # visual backbone (timm name); weights from a local file or random init
    backbone: str = "regnetx_002"
    backbone_weights: str | None = None    # e.g. pretrained/resnet50-19c8e357.pth, pretrained/pvt_v2_b5.pth
    backbone_drop_path: float = 0.0        # stochastic depth of the backbone (AVSBench PVT-v2-b5 uses 0.1)
    # True: initial weights must come from files (backbone_weights/audio_weights, else the default file names
    # in $COPROP_PRETRAINED or <repo>/pretrained); a missing file is a WeightsError unless allow_random=True
    pretrained: bool = False
    # audio encoder: 'tiny' CNN or 'vggish' (torchvggish layout, frozen)
    audio_encoder: str = "tiny"
    audio_weights: str | None = None       # e.g. pretrained/vggish-10086976.pth
    audio_tokens: int = 8                  # tokens per frame given to cross-attention
    # shared width of fused features
    dim: int = 64
    heads: int = 4
    # keyframe processor / simultaneous baseline
    fusion_layers: int = 1                 # transformer encoder layers over [image tokens ; audio tokens]
    guidance: str = "audio"                # 'audio' or 'text' (paper Table 4: a category label guides instead)
    num_text_labels: int = 0               # vocabulary size of the text-guided variant
    # audio-insert propagator: 'coprop' (own backbone and LSTT, from scratch) or 'r50_aotl' (R50-AOTL as released
    # + AudioInsert, paper 4.2; coprop.models.aot_propagator)
    propagator: str = "coprop"
    propagator_weights: str | None = None  # AOT checkpoint to start from, e.g. pretrained/R50_AOTL_PRE_YTB_DAV.pth
    lstt_layers: int = 1
    # stride (px) of the LSTT token grid: 16 as in AOT; small inputs need finer grids (at 64 px, 16 gives 4x4 tokens
    # and masks no better than J 0.32 even from a perfect match, measured on the demo test split; 4 gives 16x16)
    token_stride: int = 16
    audio_insert_levels: int = 1           # 0 = plain AOT, 1 = deepest level only, 4 = all four levels
    max_objects: int = 10                  # identity bank size
    long_term_gap_train: int = 2
    long_term_gap_test: int = 5
    memory_capacity: int = 4               # non-keyframe memory frames kept (keyframes are pinned on top)
    short_term_window: int = 7             # local attention window (stride-16 tokens, odd) around each query
    dropout: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes) -> "ModelConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown model config field(s) {sorted(unknown)}; known: "
                              f"{sorted(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return cls().replace(**d)


_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(name="tiny", image_size=128, backbone="regnetx_002", audio_encoder="tiny", dim=64, heads=4,
                 fusion_layers=1, lstt_layers=1, audio_tokens=8, memory_capacity=4),
    "paper": dict(name="paper", image_size=224, backbone="pvt_v2_b5", audio_encoder="vggish", pretrained=True,
                  propagator="r50_aotl",
                  backbone_drop_path=0.1, dim=256, heads=8,
                  fusion_layers=3, lstt_layers=3, audio_tokens=24, audio_insert_levels=4,
                  memory_capacity=8, long_term_gap_train=2, long_term_gap_test=5, short_term_window=15,
                  dropout=0.1),
}


def get_config(name: str | ModelConfig = "tiny", **overrides) -> ModelConfig:
    """``get_config('tiny', num_classes=71)``; a ModelConfig passes through with overrides applied."""
    if isinstance(name, ModelConfig):
        return name.replace(**overrides) if overrides else name
    if name not in _PRESETS:
        raise ConfigError(f"unknown model config {name!r}; choose one of {sorted(_PRESETS)}")
    return ModelConfig().replace(**_PRESETS[name]).replace(**overrides)
