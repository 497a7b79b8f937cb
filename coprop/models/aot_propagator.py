"""The ``paper`` config's Audio-Insert Propagator: R50-AOTL exactly as released plus AudioInsert layers (paper 4.2:
stage 2 trains the Audio-insert Propagator "using the pre-trained AOT-Large model with a ResNet-50 backbone").

- ``aot.*`` is coprop.models.published.aot.R50AOTL, so the released ``R50_AOTL_PRE_YTB_DAV.pth`` loads into it
  strictly (``cfg.propagator_weights``, or that file in $COPROP_PRETRAINED / <repo>/pretrained);
- ``inserts.*`` (one per level of ``cfg.audio_insert_levels``: 4 = after ResNet layer1, layer2, layer3 and after
  the 1x1 projection to the stride-16 tokens; 1 = after the projection only) and ``guidance.*`` (the audio tokens) are the only other parameters.
  Each insert is ``x + W_o Attn(LN(x), audio)`` with ``W_o`` zero-initialised, so the freshly loaded propagator
  computes exactly AOT's outputs, and ``audio_insert_levels=0`` is plain AOT (the "AOT" rows of Tables 2a/5);
- the stem and layer1 of the encoder are frozen and every batch norm is frozen (AOT's training settings).

The video API (``start``/``step``/``forward_train``, memory policy and state) is AudioInsertPropagator's; only
the encoder, the LSTT pass and the decoder are AOT's. Unlike AOT's unbounded long-term memory, the memory keeps
the keyframe plus ``cfg.memory_capacity`` frames (FIFO), which is the same until that many frames were memorised.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coprop.errors import ConfigError, DataError, WeightsError
from coprop.models.attention import MultiHeadAttention
from coprop.models.audio_insert import GuidanceTokens
from coprop.models.common import missing_file_message, pretrained_dir, resolve_weights
from coprop.models.config import ModelConfig
from coprop.models.identity import IdentityBank
from coprop.models.memory import MemoryPolicy
from coprop.models.propagator import INSERT_LEVELS, AudioInsertPropagator, PropagatorState
from coprop.models.published import published_spec
from coprop.models.published.aot import ENCODER_DIMS, MAX_OBJECTS, R50AOTL
from coprop.models.published.aot_layers import D_MODEL, HEADS, sine_position_embedding
from coprop.models.published.loading import read_checkpoint, strict_load

LEVEL_DIMS = (*ENCODER_DIMS, D_MODEL)     # layer1, layer2, layer3 (raw skips) and the projected stride-16 map


class ResidualAudioInsert(nn.Module):
    """``x + W_o Attn(LN(x), tokens)`` on a map ``[B, C, H, W]`` with tokens ``[B, N, kv_dim]``; ``W_o`` (and its
    bias) start at zero, so a fresh insert returns its input unchanged (paper eq. 6's cross-attention, put on a
    residual branch so the pre-trained AOT is the starting point)."""

    def __init__(self, dim: int, kv_dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, kv_dim=kv_dim)
        nn.init.zeros_(self.attn.out.weight)
        nn.init.zeros_(self.attn.out.bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, feat: Tensor, tokens: Tensor) -> Tensor:
        B, C, H, W = feat.shape
        y = self.drop(self.attn(self.norm(feat.flatten(2).transpose(1, 2)), tokens))
        return feat + y.transpose(1, 2).reshape(B, C, H, W)


class AOTIdentity:
    """IdentityBank's id-map bookkeeping (default/shuffled maps, scatter, gather, one-hot) over AOT's ID bank."""

    max_objects = MAX_OBJECTS
    default_map, shuffled_map, check_count = IdentityBank.default_map, IdentityBank.shuffled_map, IdentityBank.check_count
    scatter, gather, one_hot = IdentityBank.scatter, IdentityBank.gather, IdentityBank.one_hot

    def __init__(self, model: R50AOTL):
        self.model = model

    def __call__(self, probs: Tensor) -> Tensor:
        """Identity channels ``[B, 11, H, W]`` -> ID tokens ``[B, h*w, 256]``."""
        return self.model.id_embedding(probs)


def resolve_aot_weights(cfg: ModelConfig, allow_random: bool = False) -> Path | None:
    """The R50-AOTL checkpoint to start from: ``cfg.propagator_weights``, else R50_AOTL_PRE_YTB_DAV.pth in
    pretrained_dir(); None (random init) when ``cfg.pretrained`` is off. WeightsError when it is required and absent."""
    if not cfg.pretrained:
        return None
    spec = published_spec("r50_aotl")
    keys = ["encoder.conv1.weight", "LSTT.layers.0.short_term_attn.relative_emb_v", "patch_wise_id_bank.weight"]
    path = resolve_weights(cfg.propagator_weights, spec.file_name, "R50-AOTL propagator", spec.source, keys)
    if path is None and not allow_random:
        raise WeightsError(missing_file_message(pretrained_dir() / spec.file_name, "R50-AOTL propagator",
                                                spec.source, keys))
    return path


class AOTAudioInsertPropagator(AudioInsertPropagator):
    """R50-AOTL + AudioInsert with AudioInsertPropagator's video API; see the module docstring."""

    def __init__(self, cfg: ModelConfig, allow_random: bool = False, vggish: nn.Module | None = None):
        nn.Module.__init__(self)  # the parent's modules (timm backbone, own LSTT) are replaced by AOT's
        if cfg.audio_insert_levels not in INSERT_LEVELS:
            raise ConfigError(f"audio_insert_levels must be one of {sorted(INSERT_LEVELS)}, got "
                              f"{cfg.audio_insert_levels}")
        if (cfg.dim, cfg.heads, cfg.lstt_layers, cfg.max_objects) != (D_MODEL, HEADS, 3, MAX_OBJECTS):
            raise ConfigError(f"propagator 'r50_aotl' is AOT-L: dim 256, 8 heads, 3 LSTT layers, 10 objects; the "
                              f"config has dim {cfg.dim}, {cfg.heads} heads, {cfg.lstt_layers} layers, "
                              f"{cfg.max_objects} objects")
        path = resolve_aot_weights(cfg, allow_random)    # before building: a missing file fails fast
        self.cfg = cfg
        self.aot = R50AOTL()
        self.insert_levels = INSERT_LEVELS[cfg.audio_insert_levels]
        self.inserts = nn.ModuleDict({str(l): ResidualAudioInsert(LEVEL_DIMS[l], cfg.dim, cfg.heads, cfg.dropout)
                                      for l in self.insert_levels})
        self.guidance = None
        if self.insert_levels:
            self.guidance = (GuidanceTokens(cfg, allow_random, vggish) if vggish is not None
                             else GuidanceTokens(cfg, allow_random))
        for module in (self.aot.encoder.conv1, self.aot.encoder.layer1):   # AOT's TRAIN_ENCODER_FREEZE_AT = 2
            module.requires_grad_(False)
        self.loaded_from = None
        if path is not None:
            self.load_aot(path)

    def load_aot(self, checkpoint) -> None:
        """Load a released R50-AOTL checkpoint (path or dict) into ``aot.*`` strictly (WeightsError on mismatch)."""
        spec = published_spec("r50_aotl")
        state, where = read_checkpoint(checkpoint, what="r50_aotl", file_name=spec.file_name, source=spec.source)
        training = self.training
        strict_load(self.aot, state, name="r50_aotl", ignorable=spec.ignorable, where=where)
        self.aot.train(training)
        self.loaded_from = where

    @property
    def identity(self) -> AOTIdentity:
        return AOTIdentity(self.aot)

    # ---- stateless pieces --------------------------------------------------------------------------------
    def encode(self, frames: Tensor, audio: Tensor | None = None, text_labels: Tensor | None = None
               ) -> tuple[list[Tensor], Tensor]:
        """Frames ``[B, 3, H, W]`` (ImageNet-normalised) -> (layer1/2/3 maps, projected stride-16 map), with
        the audio inserted at the configured levels (0-2: after ResNet layer1-3, 3: after the projection)."""
        if self.guidance is None:
            return self.aot.encode(frames)
        tokens = self.guidance(frames.shape[0], audio, text_labels)
        inserts = {int(level): insert for level, insert in self.inserts.items()}
        skips = list(self.aot.encoder(frames))
        for level in range(3):
            if level in inserts:
                skips[level] = inserts[level](skips[level], tokens)
        # the layer3 insert reaches the LSTT through the projection as well as the decoder's 16x skip
        proj = self.aot.encoder_projector(skips[2])
        return skips, inserts[3](proj, tokens) if 3 in inserts else proj

    # ---- the video API -----------------------------------------------------------------------------------
    def start(self, frame: Tensor, audio: Tensor | None, mask_ids: Tensor, num_objects: int,
              text_labels: Tensor | None = None, id_map: Tensor | None = None,
              policy: MemoryPolicy | None = None, encoded: tuple[list[Tensor], Tensor] | None = None
              ) -> PropagatorState:
        """A new video from its keyframe: ``frame [B,3,H,W]`` (any size; AOT prefers 16k+1 sides), ``mask_ids
        [B,H,W]`` with object ids 0..num_objects. The keyframe's memory is pinned; nothing is predicted for it."""
        if frame.ndim != 4 or frame.shape[1] != 3:
            raise DataError(None, f"propagator frames must be [B, 3, H, W], got {tuple(frame.shape)}",
                            "prepare them with coprop.models.common.prepare_frames")
        id_map = self.identity.default_map(frame.shape[0], num_objects, frame.device) if id_map is None else id_map
        _, proj = encoded if encoded is not None else self.encode(frame, audio, text_labels)
        return self._init_state(proj, mask_ids.to(frame.device), num_objects, id_map,
                                policy or self.test_policy(), tuple(frame.shape[-2:]), text_labels)

    def _init_state(self, proj: Tensor, mask_ids: Tensor, num_objects: int, id_map: Tensor,
                    policy: MemoryPolicy, size: tuple[int, int], text_labels: Tensor | None) -> PropagatorState:
        """AOT's reference-frame pass (each layer attends to its own ID-fused key/value); the keyframe is pinned."""
        if tuple(mask_ids.shape) != (proj.shape[0], *size):
            raise DataError(None, f"keyframe mask has shape {tuple(mask_ids.shape)}, expected {(proj.shape[0], *size)}",
                            "give one object-id map per batch item at the frame's size")
        onehot = self.identity.one_hot(mask_ids, num_objects, id_map).to(proj.dtype)
        id_emb = self.aot.id_embedding(onehot)
        grid = tuple(proj.shape[-2:])
        pos = sine_position_embedding(*grid, D_MODEL, proj.device).to(proj.dtype)
        _, keys, hs = self.aot.lstt(proj.flatten(2).transpose(1, 2), pos, grid, id_emb=id_emb)
        values = self.aot.memory_values(hs, id_emb)
        state = PropagatorState(num_objects=num_objects, id_map=id_map, size=size, grid=grid, pos=pos,
                                policy=policy, store=policy.new_store(), short=list(zip(keys, values)),
                                text_labels=text_labels)
        # the store keeps [B, heads, tokens, d]; AOT's memories are whole 256-wide tokens (one "head")
        policy.add_keyframe(state.store, [k[:, None] for k in keys], [v[:, None] for v in values], frame=0)
        return state

    def _propagate(self, skips: list[Tensor], proj: Tensor, state: PropagatorState, soft: bool) -> Tensor:
        memories = []
        for layer in range(len(self.aot.LSTT.layers)):
            k, v = state.store.read(layer)
            memories.append(((k[:, 0], v[:, 0]), state.short[layer]))
        outs, keys, hs = self.aot.lstt(proj.flatten(2).transpose(1, 2), state.pos, state.grid, memories)
        logits = self.identity.gather(self.aot.decode(proj, outs, skips), state.id_map)
        logits = F.interpolate(logits, size=state.size, mode="bilinear", align_corners=True)
        if soft:
            probs = logits.softmax(1)
        else:  # AOT memorises the hard label map
            probs = F.one_hot(logits.argmax(1), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        id_emb = self.aot.id_embedding(self.identity.scatter(probs, state.id_map))
        values = self.aot.memory_values(hs, id_emb)
        state.short = list(zip(keys, values))
        state.frame_index += 1
        state.policy.maybe_add(state.store, [k[:, None] for k in keys], [v[:, None] for v in values],
                               state.frame_index)
        return logits


def new_parameter_names(model: AOTAudioInsertPropagator) -> list[str]:
    """Parameters that do not come from the AOT checkpoint (the AudioInsert layers and their audio tokens)."""
    return [n for n, _ in model.named_parameters() if not n.startswith("aot.")]
