"""Published models exactly as released: R50-AOTL (yoxu515/aot-benchmark) and TPAVI (OpenNLPLab/AVSBench).

``load_published(name, checkpoint)`` reads a checkpoint in the released layout, builds the model and loads
it strictly (coprop.models.published.loading). Builders are imported lazily, so asking for one model never
imports the others. Specification: reference/aot-tpavi.md; golden outputs: fixtures/golden-aot-tpavi/.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable

from torch import nn

from coprop.errors import ConfigError
from coprop.models.published.loading import read_checkpoint, strict_load

_AOT_ZOO = ("the aot-benchmark model zoo (github.com/yoxu515/aot-benchmark, MODEL_ZOO.md: R50-AOTL, "
            "Google-Drive id 1qJDYn3Ibpquu4ffYoQmVjg1YCbr2JQep)")
_AVSS_DRIVE = ("the AVSBench README's AVSS checkpoints (Google-Drive folder 1faSG_Hs2D2PkYeXLyRqlo-cjZ-DmggKB, "
               "files named {session}_miou_best.pth, e.g. V2_pvt_miou_best.pth)")
_UNRELEASED = ("none public: the AVSBench authors never released {setting} TPAVI weights (OpenNLPLab/AVSBench issues "
               "#9 and #25); train one with avs_scripts/avs_{setting_l}/train.sh, which writes "
               "{{session}}_best.pth (a raw state dict)")


@dataclass(frozen=True)
class PublishedSpec:
    """What ``load_published`` needs to know about one released model."""

    name: str
    builder: str            # "module:function" returning the bare nn.Module (random weights, any mode)
    args: tuple             # positional arguments of the builder
    file_name: str          # the released (or the original code's) checkpoint file name
    source: str             # where that file comes from, for error messages
    ignorable: tuple = ()   # keys the release carries that the model does not use (prefixes end in '.')

    def build(self) -> nn.Module:
        module, func = self.builder.split(":")
        return getattr(import_module(module), func)(*self.args)


_TPAVI = "coprop.models.published.tpavi:build_tpavi"
# AVSBench's ResNet-50 files carry a second backbone branch the forward never uses (174 keys); it is not built
_R50_UNUSED = ("resnet.layer3_2.", "resnet.layer4_2.")
PUBLISHED: dict[str, PublishedSpec] = {
    # HEAD's aot-benchmark adds LSTT.mask_token (1x1x256), never used by the forward pass; the 2021 release lacks it
    "r50_aotl": PublishedSpec("r50_aotl", "coprop.models.published.aot:build_r50_aotl", (),
                              "R50_AOTL_PRE_YTB_DAV.pth", _AOT_ZOO, ("LSTT.mask_token",)),
    "tpavi_r50_s4": PublishedSpec("tpavi_r50_s4", _TPAVI, ("tpavi_r50_s4",), "S4_resnet_best.pth",
                                  _UNRELEASED.format(setting="S4", setting_l="s4"), _R50_UNUSED),
    "tpavi_pvtb5_ms3": PublishedSpec("tpavi_pvtb5_ms3", _TPAVI, ("tpavi_pvtb5_ms3",), "MS3_pvt_best.pth",
                                     _UNRELEASED.format(setting="MS3", setting_l="ms3")),
    "tpavi_r50_avss": PublishedSpec("tpavi_r50_avss", _TPAVI, ("tpavi_r50_avss",), "V2_resnet_miou_best.pth",
                                    _AVSS_DRIVE, _R50_UNUSED),
    "tpavi_pvtb5_avss": PublishedSpec("tpavi_pvtb5_avss", _TPAVI, ("tpavi_pvtb5_avss",), "V2_pvt_miou_best.pth",
                                      _AVSS_DRIVE),
}


def published_spec(name: str) -> PublishedSpec:
    if name not in PUBLISHED:
        raise ConfigError(f"unknown published model {name!r}; choose one of {sorted(PUBLISHED)}")
    return PUBLISHED[name]


def load_published(name: str, checkpoint) -> nn.Module:
    """The published model ``name`` with the weights of ``checkpoint``, in eval mode, float32, on the CPU.

    name:       'r50_aotl', 'tpavi_r50_s4', 'tpavi_pvtb5_ms3', 'tpavi_r50_avss' or 'tpavi_pvtb5_avss'.
    checkpoint: a path to a file in the released layout (AOT: ``torch.save`` of a dict with the weights under
                'state_dict'; TPAVI: a raw state dict), or such an object already loaded. A leading
                'module.' on every key is stripped.
    Raises ConfigError for an unknown name; WeightsError for a missing or unreadable file (naming it and
    where the real file comes from), missing keys, unknown keys and wrong shapes (reference/aot-tpavi.md).
    """
    spec = published_spec(name)
    state, where = read_checkpoint(checkpoint, what=name, file_name=spec.file_name, source=spec.source)
    return strict_load(spec.build(), state, name=name, ignorable=spec.ignorable, where=where)


__all__ = ["PUBLISHED", "PublishedSpec", "load_published", "published_spec"]
