"""Which Audio-Insert Propagator a config builds: coprop's own (``tiny``) or R50-AOTL + AudioInsert (``paper``)."""
from __future__ import annotations

from torch import nn

from coprop.errors import ConfigError
from coprop.models.config import ModelConfig

PROPAGATORS = ("coprop", "r50_aotl")


def build_propagator(cfg: ModelConfig, allow_random: bool = False, vggish: nn.Module | None = None) -> nn.Module:
    """``cfg.propagator`` 'coprop': AudioInsertPropagator (own backbone and LSTT, trained from scratch);
    'r50_aotl': AOTAudioInsertPropagator, starting from the released AOT checkpoint (paper 4.2) when
    ``cfg.pretrained`` (WeightsError when the file is absent, unless ``allow_random``). ``vggish``: a loaded
    frozen VGGish to share with the pipeline's other models. Raises ConfigError for an unknown kind."""
    kind = getattr(cfg, "propagator", "coprop")
    if kind not in PROPAGATORS:
        raise ConfigError(f"unknown propagator {kind!r}; choose one of {list(PROPAGATORS)}")
    if kind == "r50_aotl":
        from coprop.models.aot_propagator import AOTAudioInsertPropagator as cls
    else:
        from coprop.models.propagator import AudioInsertPropagator as cls
    return cls(cfg, allow_random, vggish) if vggish is not None else cls(cfg, allow_random)
