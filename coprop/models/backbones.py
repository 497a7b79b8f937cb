"""Image backbones: timm ``features_only`` models giving 4 maps at strides 4/8/16/32, weights from local files.

Paper backbones load the ORIGINAL release files AVSBench uses: ``pvt_v2_b5.pth`` (whai362/PVT keys
``patch_embed{1-4}``, ``block{i}.{j}``, ``norm{i}``, ``head``) and ``resnet50-19c8e357.pth`` (torchvision keys).
The key remapping to timm's feature-model names is done here, then loaded strictly.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from torch import nn

from coprop.errors import ConfigError, WeightsError
from coprop.models.common import load_strict, missing_file_message, pretrained_dir, read_state_dict, resolve_weights
from coprop.models.config import ModelConfig

STRIDES = (4, 8, 16, 32)
_LOADING_TRAINED: ContextVar[bool] = ContextVar("coprop_loading_trained", default=False)
_AVSBENCH_DRIVE = ("the AVSBench README's Google-Drive folder 1386rcFHJ1QEQQMF6bV1rXJTzy8v26RTV "
                   "(pretrained_backbones/)")


class Backbone(nn.Module):
    """Wraps a timm feature model; forward(x [B,3,H,W]) -> 4 maps at strides 4, 8, 16, 32."""

    def __init__(self, body: nn.Module, indices: list[int], name: str):
        super().__init__()
        self.body = body
        self.indices = indices
        self.name = name
        chans = body.feature_info.channels()
        self.channels = [chans[i] for i in indices]
        self.strides = list(STRIDES)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(x)
        return [feats[i] for i in self.indices]


# ---- key remapping: release format -> timm features_only names ---------------------------------------------

def _pvt_key(k: str) -> str | None:
    """Original PVT-v2 (or timm-format) key -> timm feature-model key; None for the classifier."""
    if k.startswith("head."):
        return None
    if m := re.fullmatch(r"patch_embed(\d)\.(.+)", k):
        stage = int(m[1]) - 1
        return f"patch_embed.{m[2]}" if stage == 0 else f"stages_{stage}.downsample.{m[2]}"
    if m := re.fullmatch(r"block(\d)\.(\d+)\.(.+)", k):
        # the release wraps the depth-wise conv in a DWConv module (mlp.dwconv.dwconv); timm holds it directly
        return f"stages_{int(m[1]) - 1}.blocks.{m[2]}.{m[3].replace('dwconv.dwconv', 'dwconv')}"
    if m := re.fullmatch(r"norm(\d)\.(.+)", k):
        return f"stages_{int(m[1]) - 1}.norm.{m[2]}"
    # a checkpoint already in timm's naming: features_only flattens 'stages.N' to 'stages_N'
    return re.sub(r"^stages\.(\d+)\.", r"stages_\1.", k)


def _resnet_key(k: str) -> str | None:
    # torchvision and timm ResNets share names; only the classifier is absent from the feature model
    return None if k.startswith("fc.") else k


def _generic_key(k: str, model_keys: set[str], classifier: str) -> str | None:
    if k in model_keys:
        return k
    if classifier and k.startswith(classifier + "."):
        return None
    return re.sub(r"^(\w+)\.(\d+)\.", r"\1_\2.", k)


def _family(name: str) -> str:
    if name.startswith("pvt_v2"):
        return "pvt_v2"
    if re.fullmatch(r"resnet\d+", name):
        return "resnet"
    return "timm"


def _default_file(name: str) -> str | None:
    return {"pvt_v2": f"{name}.pth", "resnet": "resnet50-19c8e357.pth" if name == "resnet50" else None}.get(
        _family(name))


def _source(name: str) -> str:
    fam = _family(name)
    if fam == "pvt_v2":
        return f"the PVT v2 ImageNet release (github.com/whai362/PVT, {name}.pth) or {_AVSBENCH_DRIVE}"
    if fam == "resnet":
        return (f"torchvision's ImageNet release (download.pytorch.org/models/, e.g. resnet50-19c8e357.pth) "
                f"or {_AVSBENCH_DRIVE}")
    return f"a timm checkpoint of '{name}' saved with torch.save(model.state_dict())"


def _example_keys(name: str) -> list[str]:
    fam = _family(name)
    if fam == "pvt_v2":
        return ["patch_embed1.proj.weight", "block1.0.attn.q.weight", "block1.0.mlp.dwconv.dwconv.weight",
                "norm4.weight"]
    if fam == "resnet":
        return ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.2.bn3.weight"]
    return [f"the state_dict() keys of timm's {name!r} model"]


def remap_release_state(name: str, state: dict[str, torch.Tensor], body: nn.Module) -> dict[str, torch.Tensor]:
    """A release-format state dict -> the feature model's names (classifier keys dropped)."""
    fam = _family(name)
    model_keys = set(body.state_dict())
    from timm.models import get_pretrained_cfg_value

    classifier = str(get_pretrained_cfg_value(name, "classifier") or "")
    out = {}
    for k, v in state.items():
        if fam == "pvt_v2":
            nk = _pvt_key(k)
        elif fam == "resnet":
            nk = _resnet_key(k)
        else:
            nk = _generic_key(k, model_keys, classifier)
        if nk is not None:
            out[nk] = v
    return out


def resolve_backbone_weights(cfg: ModelConfig, allow_random: bool = False,
                             pretrained: bool | None = None) -> Path | None:
    """The backbone weight file to load, or None for random init; WeightsError when one is required and absent."""
    pretrained = cfg.pretrained if pretrained is None else pretrained
    name = cfg.backbone
    default = _default_file(name) if pretrained else None
    what, source, keys = f"{name} backbone", _source(name), _example_keys(name)
    path = resolve_weights(cfg.backbone_weights, default, what, source, keys)
    if path is None and pretrained and not allow_random:
        raise WeightsError(missing_file_message(pretrained_dir() / (default or f"{name}.pth"), what, source, keys))
    return path


@contextmanager
def loading_trained():
    """Within this block, backbones built with ``allow_random=True`` and no weight file are about to receive a
    trained run's weights (``coprop.train.load_run``), so the ones coprop.models.regnet can build (the tiny
    config's regnetx_002) are built there without importing timm (3.3 s CPU of torchvision and torch._dynamo).
    Same parameter names and shapes, bit-identical outputs in eval mode; only the (overwritten) random init
    differs. Not for training: use it only around loading weights for inference."""
    token = _LOADING_TRAINED.set(True)
    try:
        yield
    finally:
        _LOADING_TRAINED.reset(token)


def build_backbone(cfg: ModelConfig, allow_random: bool = False, pretrained: bool | None = None) -> Backbone:
    """The configured backbone; weights from ``cfg.backbone_weights`` (or the default release file name).

    ``pretrained`` (default ``cfg.pretrained``) demands a weight file; without one a WeightsError names the file
    expected, unless ``allow_random=True`` asks for random init explicitly (e.g. before loading a trained run;
    inside ``loading_trained()`` a regnetx_002 is then built without timm).
    """
    from coprop.models import regnet

    # resolved before building: a missing file should not cost an 80M-parameter construction first
    path = resolve_backbone_weights(cfg, allow_random, pretrained)
    name = cfg.backbone
    if path is None and allow_random and _LOADING_TRAINED.get() and name in regnet.SPECS \
            and cfg.backbone_drop_path == 0:
        body = regnet.build(name)
        return Backbone(body, [body.feature_info.reduction().index(r) for r in STRIDES], name)
    import timm

    kwargs = dict(features_only=True, pretrained=False)
    if cfg.backbone_drop_path > 0:
        kwargs["drop_path_rate"] = cfg.backbone_drop_path
    try:
        body = timm.create_model(name, **kwargs)
    except RuntimeError as e:  # timm's "Unknown model" error
        raise ConfigError(f"backbone {name!r} cannot be built by timm: {e}") from e
    reductions = list(body.feature_info.reduction())
    if not all(r in reductions for r in STRIDES):
        raise ConfigError(f"backbone {name!r} has feature strides {reductions}; need 4, 8, 16 and 32")
    backbone = Backbone(body, [reductions.index(r) for r in STRIDES], name)
    if path is not None:
        load_backbone_weights(backbone, path)
    return backbone


def load_backbone_weights(backbone: Backbone, path: str | Path) -> None:
    path = Path(path)
    state = remap_release_state(backbone.name, read_state_dict(path), backbone.body)
    load_strict(backbone.body, state, path, f"{backbone.name} backbone")
