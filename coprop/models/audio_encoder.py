"""Audio encoders: log-mel example [B,1,96,64] -> (tokens [B,N,dim], pooled [B,dim]).

Several tokens per frame, because cross-attention over a single key degenerates to adding a constant.
``VGGish`` mirrors torchvggish's module layout exactly so ``vggish-10086976.pth`` loads strictly; AVSBench keeps
it frozen, in eval mode and under no_grad, and so do we. ``TinyAudioEncoder`` is a small CNN for CPU work.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coprop.errors import ConfigError, WeightsError
from coprop.models.common import load_strict, missing_file_message, pretrained_dir, read_state_dict, resolve_weights
from coprop.models.config import ModelConfig

VGGISH_FILE = "vggish-10086976.pth"
VGGISH_SOURCE = ("the torchvggish v0.1 release (github.com/harritaylor/torchvggish/releases/download/v0.1/"
                 "vggish-10086976.pth) or the AVSBench README's Google-Drive folder "
                 "1386rcFHJ1QEQQMF6bV1rXJTzy8v26RTV")
VGGISH_KEYS = ["features.0.weight", "features.13.bias", "embeddings.0.weight", "embeddings.4.bias"]
VGGISH_TOKENS = 24  # the last conv map is 6 (time) x 4 (frequency) positions
LOGMEL_FLOOR = -4.605  # log(0.01): a silent log-mel bin


class VGGish(nn.Module):
    """torchvggish's VGG: features.{0,3,6,8,11,13} convs, embeddings.{0,2,4} FCs, ReLU after every FC."""

    def __init__(self):
        super().__init__()
        layers, c_in = [], 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B,1,96,64] -> (conv map [B,512,6,4], 128-d embedding [B,128])."""
        fmap = self.features(x)
        # TF ordering: channels last before flattening, as torchvggish does
        emb = self.embeddings(fmap.permute(0, 2, 3, 1).reshape(fmap.shape[0], -1))
        return fmap, emb


class VGGishEncoder(nn.Module):
    """Frozen VGGish; its 6x4 conv positions become 24 tokens, its 128-d embedding the pooled vector."""

    def __init__(self, dim: int, vggish: VGGish | None = None):
        super().__init__()
        # a VGGish given by the caller is shared, not copied (one frozen copy per pipeline, see share_vggish)
        self.vggish = (vggish if vggish is not None else VGGish()).requires_grad_(False).eval()
        self.num_tokens = VGGISH_TOKENS
        self.token_norm = nn.LayerNorm(512)
        self.token_proj = nn.Linear(512, dim)
        self.token_pos = nn.Parameter(torch.randn(VGGISH_TOKENS, dim) * 0.02)
        self.pooled_proj = nn.Linear(128, dim)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vggish.eval()  # frozen as in AVSBench: never in training mode
        return self

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logmel = as_logmel_examples(logmel)
        with torch.no_grad():
            fmap, emb = self.vggish(logmel)
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, 24, 512], time-major
        tokens = self.token_proj(self.token_norm(tokens)) + self.token_pos
        return tokens, self.pooled_proj(emb)


class TinyAudioEncoder(nn.Module):
    """Four strided convs -> time-slice tokens (time pooled to ``num_tokens``, frequency kept in the channels).

    No per-example normalisation: it would blow background noise in a silent example up to the level of sound.
    """

    def __init__(self, dim: int, num_tokens: int = 8, width: int = 32):
        super().__init__()
        chans = [1, width // 2, width, 2 * width, 2 * width]
        convs = []
        for i in range(4):
            stride = 2 if i < 3 else 1
            convs += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=stride, padding=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*convs)  # [B,1,96,64] -> [B,2w,12,8]
        self.num_tokens = num_tokens
        self.token_proj = nn.Linear(chans[-1] * 8, dim)
        self.token_pos = nn.Parameter(torch.randn(num_tokens, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.pooled_proj = nn.Linear(dim, dim)

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (as_logmel_examples(logmel) - LOGMEL_FLOOR) / 4.0  # silence -> 0
        fmap = F.adaptive_avg_pool2d(self.convs(x), (self.num_tokens, 8))  # [B,C,N,8]
        tokens = fmap.permute(0, 2, 1, 3).flatten(2)  # [B,N,C*8]
        tokens = self.norm(self.token_proj(tokens) + self.token_pos)
        return tokens, self.pooled_proj(tokens.mean(1))


def as_logmel_examples(logmel: torch.Tensor) -> torch.Tensor:
    """Log-mel examples [B,96,64] or [B,1,96,64] -> float32 [B,1,96,64]; ValueError for any other shape."""
    if logmel.ndim == 3:
        logmel = logmel[:, None]
    if logmel.ndim != 4 or tuple(logmel.shape[1:]) != (1, 96, 64):
        raise ValueError(f"audio encoder expects log-mel examples [B,1,96,64], got {tuple(logmel.shape)}")
    return logmel.float()


def resolve_audio_weights(cfg: ModelConfig, allow_random: bool = False, pretrained: bool | None = None):
    """The audio weight file to load, or None for random init; WeightsError when one is required and absent."""
    pretrained = cfg.pretrained if pretrained is None else pretrained
    if cfg.audio_encoder == "tiny":
        return resolve_weights(cfg.audio_weights, None, "tiny audio encoder", "a coprop training run",
                               ["convs.0.weight", "token_proj.weight"])
    if cfg.audio_encoder != "vggish":
        raise ConfigError(f"unknown audio_encoder {cfg.audio_encoder!r}; choose 'vggish' or 'tiny'")
    if cfg.audio_tokens != VGGISH_TOKENS:
        raise ConfigError(f"audio_encoder='vggish' gives {VGGISH_TOKENS} tokens (its 6x4 conv map) but "
                          f"audio_tokens={cfg.audio_tokens}; set audio_tokens={VGGISH_TOKENS}")
    path = resolve_weights(cfg.audio_weights, VGGISH_FILE if pretrained else None, "VGGish", VGGISH_SOURCE,
                           VGGISH_KEYS)
    if path is None and pretrained and not allow_random:
        raise WeightsError(missing_file_message(pretrained_dir() / VGGISH_FILE, "VGGish", VGGISH_SOURCE,
                                                VGGISH_KEYS))
    return path


def build_audio_encoder(cfg: ModelConfig, allow_random: bool = False, pretrained: bool | None = None,
                        vggish: VGGish | None = None) -> nn.Module:
    """``cfg.audio_encoder`` = 'vggish' (frozen; weights from ``cfg.audio_weights`` or the default file in
    pretrained_dir(), required when pretrained unless ``allow_random``) or 'tiny' (random unless audio_weights).

    ``vggish``: an already loaded VGGish to share instead of loading another copy (289 MB of fp32 weights);
    its weights are used as they are.
    """
    if cfg.audio_encoder == "vggish" and vggish is not None:
        return VGGishEncoder(cfg.dim, vggish)
    path = resolve_audio_weights(cfg, allow_random, pretrained)
    if cfg.audio_encoder == "tiny":
        enc = TinyAudioEncoder(cfg.dim, cfg.audio_tokens)
        if path is not None:
            load_strict(enc, read_state_dict(path), path, "tiny audio encoder")
        return enc
    return VGGishEncoder(cfg.dim, load_vggish(path))


def load_vggish(path: str | Path | None) -> VGGish:
    """A frozen VGGish in eval mode with the torchvggish weights of ``path`` (None: random init, for tests).

    Raises WeightsError when the file is missing, unreadable or not in the torchvggish layout.
    """
    if path is None:
        return VGGish().requires_grad_(False).eval()
    path = Path(path)
    if not path.is_file():
        raise WeightsError(missing_file_message(path, "VGGish", VGGISH_SOURCE, VGGISH_KEYS))
    with torch.device("meta"):  # no random init of 72 M values that the file overwrites at once
        model = VGGish()
    model = model.to_empty(device="cpu")
    load_strict(model, read_state_dict(path), path, "VGGish (torchvggish layout)")  # every tensor, or an error
    return model.requires_grad_(False).eval()


def share_vggish(*models: nn.Module) -> int:
    """Make every VGGish inside ``models`` one module (the first one found); returns the bytes freed.

    The Keyframe Processor, the propagator and a TPAVI wrapper of one pipeline each hold a frozen VGGish
    (72.1 M values, 289 MB in fp32); sharing keeps one. Only copies with identical weights, dtype and device
    are merged; a VGGish with other weights stays where it is (with a warning), so no model changes output.
    """
    found: list[tuple[nn.Module, str, VGGish]] = []
    for model in models:
        for parent in model.modules():
            found += [(parent, name, child) for name, child in parent.named_children() if isinstance(child, VGGish)]
    if not found:
        return 0
    keep = found[0][2]
    ref = keep.state_dict()
    freed = 0
    for parent, name, child in found[1:]:
        if child is keep:
            continue
        other = child.state_dict()
        if all(other[k].dtype == v.dtype and other[k].device == v.device and torch.equal(other[k], v)
               for k, v in ref.items()):
            setattr(parent, name, keep)
            freed += sum(t.numel() * t.element_size() for t in other.values())
        else:
            warnings.warn(f"{type(parent).__name__}.{name}: a VGGish with other weights (or dtype/device) than "
                          f"the pipeline's first one; kept separate", stacklevel=2)
    return freed
