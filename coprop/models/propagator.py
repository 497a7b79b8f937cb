"""Audio-Insert Propagator (paper 3.4): AOT-style mask propagation with per-frame audio insertion.

The module is stateless (Cutie style): everything that belongs to one video -- memory, the previous
frame, which identity each object uses -- lives in the ``PropagatorState`` that ``start`` returns and
``step`` updates. Per frame:

  1. encoder: 4 feature maps (strides 4/8/16/32), each projected to ``cfg.dim``;
  2. AudioInsert at ``cfg.audio_insert_levels``: 0 = none (plain AOT), 1 = the deepest level,
     4 = all four levels;
  3. the token grid at ``cfg.token_stride`` (16 as in AOT: level 3 + upsampled level 4; 8 or 4 for small
     inputs: that level + every deeper level upsampled) goes through ``cfg.lstt_layers`` LSTT
     blocks: self-attention, long-term attention to the memory (the keyframe, pinned, plus frames
     kept by the memory policy), short-term windowed attention to the previous frame, FFN;
  4. FPN decoder over the tokens and every LSTT output, with the stride 16/8/4 maps as skips,
     to ``max_objects + 1`` identity logits, of which the ones the video uses are returned;
  5. the predicted mask (hard at inference, soft in training) becomes identity embeddings that complete
     this frame's memory values; the memory policy decides whether the frame is memorised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coprop.errors import ConfigError, DataError
from coprop.models.audio_insert import AudioInsert, GuidanceTokens
from coprop.models.config import ModelConfig
from coprop.models.identity import IdentityBank
from coprop.models.attention import sine_embedding_2d
from coprop.models.lstt import LSTTBlock
from coprop.models.memory import MemoryPolicy, MemoryStore

TOKEN_STRIDES = (4, 8, 16)   # cfg.token_stride -> pyramid level 0, 1, 2 (strides 4, 8, 16; level 3 is stride 32)
INSERT_LEVELS = {0: (), 1: (3,), 4: (0, 1, 2, 3)}   # audio_insert_levels -> pyramid levels (3 = deepest)


@dataclass
class PropagatorState:
    """One video's propagation state. ``step`` mutates it in place and also returns it."""

    num_objects: int
    id_map: Tensor                       # [B, K+1] identity used by each object (column 0: background)
    size: tuple[int, int]                # input frame size (S, S)
    grid: tuple[int, int]                # token grid (S/stride, S/stride)
    pos: Tensor                          # [h*w, dim] position encoding of that grid
    policy: MemoryPolicy
    store: MemoryStore
    short: list[tuple[Tensor, Tensor]]   # previous frame's (key, value) per LSTT layer
    text_labels: Tensor | None = None
    frame_index: int = 0                 # frames seen since start (the keyframe is 0)

    def nbytes(self) -> int:
        """Bytes of the tensors this state keeps alive (memory store + short-term memory)."""
        short = sum(t.numel() * t.element_size() for kv in self.short for t in kv)
        return self.store.nbytes() + short


def _conv_gn(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.GroupNorm(math.gcd(8, cout), cout), nn.ReLU(inplace=True))


class PropagationDecoder(nn.Module):
    """AOT's FPN: [tokens ; every LSTT output] -> stride 16 -> 8 -> 4 -> identity logits. With a token grid finer
    than stride 16, a coarser skip is upsampled to the grid instead (the same layers, run at the grid's size)."""

    def __init__(self, dim: int, lstt_layers: int, out_channels: int):
        super().__init__()
        half = max(dim // 2, 8)
        self.conv_in = _conv_gn(dim * (lstt_layers + 1), dim, 1)
        self.adapt16, self.conv16 = nn.Conv2d(dim, dim, 1), _conv_gn(dim, dim, 3)
        self.adapt8, self.conv8 = nn.Conv2d(dim, dim, 1), _conv_gn(dim, half, 3)
        self.adapt4, self.conv4 = nn.Conv2d(dim, half, 1), _conv_gn(half, half, 3)
        self.head = nn.Conv2d(half, out_channels, 1)

    def forward(self, tokens: list[Tensor], skips: list[Tensor]) -> Tensor:
        """``tokens``: maps at stride 16; ``skips``: projected maps at strides 4, 8, 16."""
        s4, s8, s16 = skips
        x = self.conv_in(torch.cat(tokens, 1))
        for skip, adapt, conv in ((s16, self.adapt16, self.conv16), (s8, self.adapt8, self.conv8),
                                  (s4, self.adapt4, self.conv4)):
            x, y = _same_size(x, adapt(skip))
            x = conv(x + y)
        return self.head(x)


def _same_size(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Bilinearly upsample the coarser of two maps to the finer one's size."""
    if x.shape[-2:] == y.shape[-2:]:
        return x, y
    if x.shape[-1] < y.shape[-1]:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=False), y
    return x, F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class AudioInsertPropagator(nn.Module):
    def __init__(self, cfg: ModelConfig, allow_random: bool = False, vggish: nn.Module | None = None):
        """``vggish``: a loaded frozen VGGish to share with the pipeline's other models (cfg.audio_encoder='vggish')."""
        super().__init__()
        from coprop.models.backbones import build_backbone

        if cfg.audio_insert_levels not in INSERT_LEVELS:
            raise ConfigError(f"audio_insert_levels must be one of {sorted(INSERT_LEVELS)}, got "
                              f"{cfg.audio_insert_levels}")
        if cfg.image_size % 32:
            raise ConfigError(f"image_size {cfg.image_size} must be a multiple of 32 for the propagator")
        if cfg.token_stride not in TOKEN_STRIDES:
            raise ConfigError(f"token_stride must be one of {TOKEN_STRIDES}, got {cfg.token_stride}")
        self.cfg = cfg
        self.token_level = TOKEN_STRIDES.index(cfg.token_stride)
        dim = cfg.dim
        self.backbone = build_backbone(cfg, allow_random=allow_random)
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in self.backbone.channels)
        # every level normalised per token before it is used: without it the plain-AOT variant (no AudioInsert,
        # whose post-norm did this) trained far slower -- at 64 px, 300 steps from GT keyframes: val J 0.42 vs 0.82
        self.lateral_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in self.backbone.channels)
        self.insert_levels = INSERT_LEVELS[cfg.audio_insert_levels]
        self.inserts = nn.ModuleDict({str(l): AudioInsert(dim, cfg.heads, cfg.dropout) for l in self.insert_levels})
        self.guidance = GuidanceTokens(cfg, allow_random, vggish) if self.insert_levels else None
        self.blocks = nn.ModuleList(LSTTBlock(dim, cfg.heads, cfg.short_term_window, dropout=cfg.dropout)
                                    for _ in range(cfg.lstt_layers))
        self.out_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(cfg.lstt_layers))
        self.identity = IdentityBank(cfg.max_objects, dim, cfg.token_stride)
        self.decoder = PropagationDecoder(dim, cfg.lstt_layers, cfg.max_objects + 1)

    # ---- policies ---------------------------------------------------------------------------------------
    def test_policy(self) -> MemoryPolicy:
        return MemoryPolicy(gap=self.cfg.long_term_gap_test, capacity=self.cfg.memory_capacity)

    def train_policy(self) -> MemoryPolicy:
        return MemoryPolicy(gap=self.cfg.long_term_gap_train, capacity=self.cfg.memory_capacity)

    # ---- stateless pieces --------------------------------------------------------------------------------
    def encode(self, frames: Tensor, audio: Tensor | None = None, text_labels: Tensor | None = None
               ) -> tuple[list[Tensor], Tensor]:
        """Frames ``[B, 3, S, S]`` -> (projected maps at strides 4, 8, 16; token map at ``cfg.token_stride``)."""
        feats = [norm(lat(f).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
                 for lat, norm, f in zip(self.lateral, self.lateral_norms, self.backbone(frames))]
        if self.guidance is not None:
            tokens = self.guidance(frames.shape[0], audio, text_labels)
            for level in self.insert_levels:
                feats[level] = self.inserts[str(level)](feats[level], tokens)
        grid = feats[self.token_level]
        for deep in feats[self.token_level + 1:]:
            grid = grid + F.interpolate(deep, size=grid.shape[-2:], mode="bilinear", align_corners=False)
        return feats[:3], grid

    def _lstt(self, grid_map: Tensor, state: PropagatorState | None, id_emb: Tensor | None, pos: Tensor
              ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor | None]]:
        B, C, h, w = grid_map.shape
        x = grid_map.flatten(2).transpose(1, 2)
        outs, keys, hs, values = [grid_map], [], [], []
        for layer, (block, norm) in enumerate(zip(self.blocks, self.out_norms)):
            long_kv = state.store.read(layer) if state is not None else None
            short_kv = state.short[layer] if state is not None else None
            x, k, hn, v = block(x, pos, (h, w), long_kv, short_kv, id_emb)
            outs.append(norm(x).transpose(1, 2).reshape(B, C, h, w))
            keys.append(k)
            hs.append(hn)
            values.append(v)
        return outs, keys, hs, values

    # ---- the video API -----------------------------------------------------------------------------------
    def start(self, frame: Tensor, audio: Tensor | None, mask_ids: Tensor, num_objects: int,
              text_labels: Tensor | None = None, id_map: Tensor | None = None,
              policy: MemoryPolicy | None = None, encoded: tuple[list[Tensor], Tensor] | None = None
              ) -> PropagatorState:
        """A new video (or segment) from its keyframe: ``frame [B,3,S,S]``, ``mask_ids [B,S,S]`` with
        object ids 0..num_objects. The keyframe's memory is pinned; nothing is predicted for it.
        ``encoded``: this frame's ``encode(frame, audio)`` when the caller batched it over many frames."""
        B, _, S, S2 = frame.shape
        if S != S2 or S % 32:
            raise DataError(None, f"propagator frames must be square with a side divisible by 32, got {S}x{S2}",
                            "resize with coprop.models.common.prepare_frames(frames, cfg.image_size)")
        id_map = self.identity.default_map(B, num_objects, frame.device) if id_map is None else id_map
        _, grid_map = encoded if encoded is not None else self.encode(frame, audio, text_labels)
        return self._init_state(grid_map, mask_ids.to(frame.device), num_objects, id_map,
                                policy or self.test_policy(), (S, S), text_labels)

    def _init_state(self, grid_map: Tensor, mask_ids: Tensor, num_objects: int, id_map: Tensor,
                    policy: MemoryPolicy, size: tuple[int, int], text_labels: Tensor | None) -> PropagatorState:
        """Run the keyframe through the LSTT against its own identity-fused memory and pin it."""
        if tuple(mask_ids.shape) != (grid_map.shape[0], *size):
            raise DataError(None, f"keyframe mask has shape {tuple(mask_ids.shape)}, expected "
                                  f"{(grid_map.shape[0], *size)}",
                            "give one object-id map per batch item at the frame's size")
        onehot = self.identity.one_hot(mask_ids, num_objects, id_map).to(grid_map.dtype)
        C, h, w = grid_map.shape[-3:]
        pos = sine_embedding_2d(h, w, C, device=grid_map.device).to(grid_map.dtype)
        _, keys, _, values = self._lstt(grid_map, None, self.identity(onehot), pos)
        state = PropagatorState(num_objects=num_objects, id_map=id_map, size=size, grid=(h, w), pos=pos,
                                policy=policy, store=policy.new_store(), short=list(zip(keys, values)),
                                text_labels=text_labels)
        policy.add_keyframe(state.store, keys, values, frame=0)
        return state

    def step(self, frame: Tensor, audio: Tensor | None, state: PropagatorState,
             encoded: tuple[list[Tensor], Tensor] | None = None) -> tuple[Tensor, PropagatorState]:
        """The next frame of the video: -> (logits ``[B, num_objects+1, S, S]``, channel 0 background; state).
        ``encoded``: as for ``start``."""
        if tuple(frame.shape[-2:]) != state.size:
            raise DataError(None, f"frame size {tuple(frame.shape[-2:])} differs from the keyframe's {state.size}",
                            "all frames of a video must be resized to the same size")
        skips, grid_map = encoded if encoded is not None else self.encode(frame, audio, state.text_labels)
        return self._propagate(skips, grid_map, state, soft=False), state

    def _propagate(self, skips: list[Tensor], grid_map: Tensor, state: PropagatorState, soft: bool) -> Tensor:
        outs, keys, hs, _ = self._lstt(grid_map, state, None, state.pos)
        id_logits = self.decoder(outs, skips)
        logits = self.identity.gather(id_logits, state.id_map)
        logits = F.interpolate(logits, size=state.size, mode="bilinear", align_corners=False)
        if soft:
            probs = logits.softmax(1)
        else:
            probs = F.one_hot(logits.max(1).indices, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        # AOT's second phase: the mask just predicted completes this frame's memory values
        id_emb = self.identity(self.identity.scatter(probs, state.id_map))
        values = [block.memory_value(h, id_emb) for block, h in zip(self.blocks, hs)]
        state.short = list(zip(keys, values))
        state.frame_index += 1
        state.policy.maybe_add(state.store, keys, values, state.frame_index)
        return logits

    def forward_train(self, frames: Tensor, audio: Tensor | None, first_mask: Tensor, num_objects: int,
                      text_labels: Tensor | None = None, id_shuffle: bool | None = None) -> Tensor:
        """Differentiable propagation over a short clip: ``frames [B,T,3,S,S]``, ``audio [B,T,1,96,64]``,
        ``first_mask [B,S,S]`` -> logits ``[B, T-1, num_objects+1, S, S]`` for frames 1..T-1.

        Memory holds the previous frames' soft predictions (gap ``cfg.long_term_gap_train``), so the
        loss on later frames trains the propagation of earlier ones. Identities are shuffled per sample
        while training (``id_shuffle`` defaults to ``self.training``).
        """
        B, T = frames.shape[:2]
        if T < 2:
            raise ValueError(f"forward_train needs at least 2 frames, got {T}")
        id_shuffle = self.training if id_shuffle is None else id_shuffle
        id_map = (self.identity.shuffled_map(B, num_objects, frames.device) if id_shuffle
                  else self.identity.default_map(B, num_objects, frames.device))
        # one backbone pass over all frames; propagation itself is sequential
        flat_audio = audio.flatten(0, 1) if audio is not None else None
        labels = None if text_labels is None else torch.as_tensor(text_labels).reshape(B, 1).expand(B, T).reshape(-1)
        skips, grid_map = self.encode(frames.flatten(0, 1), flat_audio, labels)
        skips = [s.unflatten(0, (B, T)) for s in skips]
        grid_map = grid_map.unflatten(0, (B, T))

        S = frames.shape[-1]
        state = self._init_state(grid_map[:, 0], first_mask, num_objects, id_map, self.train_policy(), (S, S),
                                 text_labels)
        logits = [self._propagate([s[:, t] for s in skips], grid_map[:, t], state, soft=True) for t in range(1, T)]
        return torch.stack(logits, 1)
