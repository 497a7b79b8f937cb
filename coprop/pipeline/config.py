"""How the pipeline is set up: input size, output classes, what a clip-level keyframe model sees, the area a
class needs in a semantic keyframe mask, the binary keyframe threshold."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PipelineConfig:
    """image_size: propagator input (default: the propagator's cfg); num_classes: K of the output (default:
    the keyframe model's cfg); keyframe_context: what a clip-level keyframe model sees -- 'segment' or
    'clip' offline (streaming always gives it the keyframe alone); area_floor: share of the frame a class
    must cover in a semantic keyframe mask to become a propagated object; binary_threshold: keyframe logit
    above which a pixel is the object."""

    image_size: int | None = None
    num_classes: int | None = None
    keyframe_context: str = "segment"
    area_floor: float = 0.001
    binary_threshold: float = 0.0
