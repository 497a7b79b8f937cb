"""Deterministic, resumable data order: the batches of an epoch are a pure function of (seed, epoch).

This replaces RandomSampler + DistributedSampler. Nothing depends on global RNG state or worker timing,
so a run resumed at step k of epoch e sees exactly the batches an uninterrupted run would have seen.
Sharding follows DistributedSampler: the permutation is padded by wrapping to a multiple of the world
size, and every global batch is dealt round-robin, so all ranks take the same number of steps.
"""
from __future__ import annotations

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    if not shuffle:
        return np.arange(n)
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g).numpy()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                  shuffle: bool = True, drop_last: bool = False) -> list[list[int]]:
    """This rank's batches (lists of dataset indices) for ``epoch``."""
    if n <= 0:
        return []
    perm = epoch_permutation(n, seed, epoch, shuffle)
    if world_size > 1 and len(perm) % world_size:
        pad = world_size - len(perm) % world_size
        perm = np.concatenate([perm, np.resize(perm, pad)])
    global_batch = batch_size * world_size
    steps = len(perm) // global_batch if drop_last else -(-len(perm) // global_batch)
    out = []
    for s in range(steps):
        chunk = perm[s * global_batch:(s + 1) * global_batch]
        out.append([int(i) for i in chunk[rank::world_size]])
    return out


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Per-sample randomness (augmentation, segment choice) that survives resume and worker processes."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])
