"""Models: backbones, audio encoders, Keyframe Processor, simultaneous baseline, Audio-Insert Propagator."""
from coprop.models.config import ModelConfig, get_config

__all__ = ["ModelConfig", "get_config"]
