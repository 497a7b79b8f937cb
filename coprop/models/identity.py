"""Identity (ID) bank: turns a multi-object mask into per-token identity embeddings (AOT's mechanism).

Each of ``max_objects + 1`` identities (index 0 = background) owns a learnable ``dim x patch x patch``
filter; a stride-``patch`` convolution over the one-hot (or soft) mask gives, for every token of the
LSTT grid, the sum of the identities present in its patch weighted by where they lie. All objects of a
video are encoded in one pass, so the cost does not grow with their number (unlike per-object
propagators such as Cutie or SAM 2).

Objects are numbered 1..K in the caller's mask; ``id_map [B, K+1]`` says which identity each uses
(column 0 is always 0). Training shuffles the map so no identity is tied to a kind of object.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coprop.errors import ConfigError, DataError


class IdentityBank(nn.Module):
    def __init__(self, max_objects: int, dim: int, patch: int = 16):
        super().__init__()
        if max_objects < 1:
            raise ConfigError(f"max_objects must be >= 1, got {max_objects}")
        self.max_objects = max_objects
        self.patch = patch
        # a stride-``patch`` convolution's weight, flattened to [dim, (max_objects+1) * patch * patch]
        self.weight = nn.Parameter(torch.empty(dim, (max_objects + 1) * patch * patch))
        self.bias = nn.Parameter(torch.zeros(dim))
        # a small orthogonal start keeps identities distinguishable and the embedding small next to
        # the visual features it is added to
        nn.init.orthogonal_(self.weight, gain=patch ** -2)

    def forward(self, probs: Tensor) -> Tensor:
        """``probs [B, max_objects+1, S, S]`` (one-hot or soft) -> tokens ``[B, (S/patch)**2, dim]``.

        A stride-``patch`` convolution written as patchify + matmul: the same result, but CPU
        convolution kernels are slow for a 16x16 kernel over 11 channels.
        """
        B, M, H, W = probs.shape
        p = self.patch
        h, w = H // p, W // p
        patches = probs[:, :, :h * p, :w * p].reshape(B, M, h, p, w, p).permute(0, 2, 4, 1, 3, 5)
        return F.linear(patches.reshape(B, h * w, M * p * p), self.weight, self.bias)

    # ---- id maps --------------------------------------------------------------------------------
    def default_map(self, batch: int, num_objects: int, device) -> Tensor:
        self.check_count(num_objects)
        return torch.arange(num_objects + 1, device=device).expand(batch, -1).contiguous()

    def shuffled_map(self, batch: int, num_objects: int, device, generator=None) -> Tensor:
        """A random distinct identity per object and sample; background stays 0."""
        self.check_count(num_objects)
        perms = torch.stack([torch.randperm(self.max_objects, generator=generator) + 1 for _ in range(batch)])
        zeros = torch.zeros(batch, 1, dtype=torch.long)
        return torch.cat([zeros, perms[:, :num_objects]], dim=1).to(device)

    def check_count(self, num_objects: int) -> None:
        if not 0 <= num_objects <= self.max_objects:
            raise ConfigError(f"{num_objects} objects requested but the identity bank holds "
                              f"{self.max_objects} (cfg.max_objects); keep the largest objects or raise "
                              f"max_objects and retrain")

    # ---- mask <-> identity channels ------------------------------------------------------------
    def scatter(self, probs: Tensor, id_map: Tensor) -> Tensor:
        """Object channels ``[B, K+1, S, S]`` -> identity channels ``[B, max_objects+1, S, S]``."""
        B, K1, H, W = probs.shape
        full = probs.new_zeros(B, self.max_objects + 1, H, W)
        return full.scatter(1, id_map[:, :, None, None].expand(B, K1, H, W), probs)

    def gather(self, id_logits: Tensor, id_map: Tensor) -> Tensor:
        """Identity logits ``[B, max_objects+1, h, w]`` -> the objects' logits ``[B, K+1, h, w]``."""
        B, _, H, W = id_logits.shape
        return id_logits.gather(1, id_map[:, :, None, None].expand(B, id_map.shape[1], H, W))

    def one_hot(self, mask_ids: Tensor, num_objects: int, id_map: Tensor) -> Tensor:
        """Object-id mask ``[B, S, S]`` (0 = background, 1..K) -> identity one-hot ``[B, M+1, S, S]``."""
        if mask_ids.dtype not in (torch.int64, torch.int32, torch.uint8, torch.int16):
            raise DataError(None, f"mask_ids must be an integer tensor, got {mask_ids.dtype}",
                            "pass object ids 0..num_objects (0 = background)")
        lo, hi = int(mask_ids.min()), int(mask_ids.max())
        if lo < 0 or hi > num_objects:
            raise DataError(None, f"mask ids span {lo}..{hi} but num_objects={num_objects}",
                            "number objects 1..num_objects and use 0 for background")
        onehot = torch.nn.functional.one_hot(mask_ids.long(), num_objects + 1).permute(0, 3, 1, 2)
        return self.scatter(onehot.float(), id_map)
