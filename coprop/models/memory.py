"""Bounded long-term memory for the propagator: storage and policy are separate objects.

``MemoryStore`` owns fixed-capacity tensors (one key and one value tensor per LSTT layer, laid out
``[B, heads, slots, tokens, head_dim]``), allocated on the first write and then only overwritten, so the
bytes it holds stop growing after warm-up however long the video is. It records which frame sits in
each slot and knows nothing about *why* a frame is there.

``MemoryPolicy`` decides: a keyframe goes to one of the ``pinned`` slots (never touched by normal
frames); a normal frame is memorised every ``gap`` frames since the last memorised one (AOT's
long-term gap) and goes to a free normal slot or replaces the oldest normal frame (FIFO). Unlike AOT,
which concatenates every memorised frame (memory and cost grow linearly with video length), the
attention here sees at most ``pinned + capacity`` frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from coprop.errors import ConfigError, DataError

SLOT_DIM = 2  # storage layout [B, heads, slots, tokens, head_dim]


class MemoryStore:
    """Per-layer key/value tensors with a fixed number of slots; one slot holds one frame."""

    def __init__(self, num_slots: int):
        if num_slots < 1:
            raise ConfigError(f"a memory store needs at least one slot, got {num_slots}")
        self.num_slots = num_slots
        self.keys: list[Tensor] = []
        self.values: list[Tensor] = []
        self.frame_of_slot: list[int | None] = [None] * num_slots
        self.last_added: int | None = None

    # ---- bookkeeping -------------------------------------------------------------------------
    def occupied(self) -> list[int]:
        return [s for s, f in enumerate(self.frame_of_slot) if f is not None]

    def __len__(self) -> int:
        return len(self.occupied())

    @property
    def frames(self) -> list[int]:
        """Frame indices currently held, in slot order."""
        return [f for f in self.frame_of_slot if f is not None]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    # ---- storage ------------------------------------------------------------------------------
    def _allocate(self, keys: Sequence[Tensor], values: Sequence[Tensor]) -> None:
        def buffer(t: Tensor) -> Tensor:
            shape = list(t.shape)
            shape.insert(SLOT_DIM, self.num_slots)
            return t.new_zeros(shape)

        self.keys = [buffer(k) for k in keys]
        self.values = [buffer(v) for v in values]

    def write(self, slot: int, keys: Sequence[Tensor], values: Sequence[Tensor], frame: int) -> None:
        """Put one frame's per-layer keys/values ``[B, heads, tokens, head_dim]`` into ``slot``.

        Under autograd (training) the write is out-of-place (``index_copy``) so gradients reach the
        frame that produced the entry; otherwise the preallocated buffer is overwritten in place.
        """
        if not 0 <= slot < self.num_slots:
            raise IndexError(f"slot {slot} out of range for a store of {self.num_slots} slots")
        if not self.keys:
            self._allocate(keys, values)
        if len(keys) != len(self.keys) or len(values) != len(self.values):
            raise ValueError(f"expected {len(self.keys)} layers of keys/values, got {len(keys)}/{len(values)}")
        for entry, buffer in zip((*keys, *values), (*self.keys, *self.values)):
            fits = buffer.shape[:SLOT_DIM] + buffer.shape[SLOT_DIM + 1:]
            if entry.shape != fits:
                raise DataError(None, f"memory entry of shape {tuple(entry.shape)} does not fit a store of "
                                      f"{tuple(fits)}", "every frame of one video must have the same size and batch")
        for layer, (k, v) in enumerate(zip(keys, values)):
            self.keys[layer] = self._put(self.keys[layer], slot, k)
            self.values[layer] = self._put(self.values[layer], slot, v)
        self.frame_of_slot[slot] = frame
        self.last_added = frame if self.last_added is None else max(self.last_added, frame)

    @staticmethod
    def _put(buffer: Tensor, slot: int, entry: Tensor) -> Tensor:
        if torch.is_grad_enabled() and (entry.requires_grad or buffer.requires_grad):
            index = torch.tensor([slot], device=buffer.device)
            return buffer.index_copy(SLOT_DIM, index, entry.unsqueeze(SLOT_DIM).to(buffer.dtype))
        buffer.select(SLOT_DIM, slot).copy_(entry)
        return buffer

    def read(self, layer: int) -> tuple[Tensor, Tensor] | None:
        """Keys and values of the occupied slots as ``[B, heads, n_frames*tokens, head_dim]``.

        When every slot is occupied this is a view of the buffers (no copy); otherwise the occupied
        slots are gathered, a transient copy bounded by the store's capacity.
        """
        slots = self.occupied()
        if not slots:
            return None
        k, v = self.keys[layer], self.values[layer]
        if len(slots) < self.num_slots:
            index = torch.tensor(slots, device=k.device)
            k, v = k.index_select(SLOT_DIM, index), v.index_select(SLOT_DIM, index)
        return k.flatten(SLOT_DIM, SLOT_DIM + 1), v.flatten(SLOT_DIM, SLOT_DIM + 1)


@dataclass(frozen=True)
class MemoryPolicy:
    """Which frames enter long-term memory and which leave it.

    gap       memorise a normal frame when ``frame - last memorised frame >= gap`` (0 disables normal
              frames: the memory then holds keyframes only, like AOT-T/S/B).
    capacity  normal frames kept; the oldest one is evicted first (FIFO).
    pinned    keyframe slots; normal frames never evict a keyframe. With more keyframes than pinned
              slots the oldest keyframe gives way (the pipeline restarts memory at each keyframe, so
              one pinned slot is the usual setting).
    """

    gap: int
    capacity: int
    pinned: int = 1

    def __post_init__(self):
        if self.gap < 0 or self.capacity < 0 or self.pinned < 1:
            raise ConfigError(f"memory policy needs gap >= 0, capacity >= 0, pinned >= 1; got gap={self.gap}, "
                              f"capacity={self.capacity}, pinned={self.pinned}")

    @property
    def num_slots(self) -> int:
        return self.pinned + self.capacity

    def new_store(self) -> MemoryStore:
        return MemoryStore(self.num_slots)

    def should_add(self, store: MemoryStore, frame: int) -> bool:
        if self.gap == 0 or self.capacity == 0:
            return False
        return store.last_added is None or frame - store.last_added >= self.gap

    def keyframe_slot(self, store: MemoryStore) -> int:
        return self._free_or_oldest(store, range(0, self.pinned))

    def frame_slot(self, store: MemoryStore) -> int:
        if self.capacity == 0:
            raise ConfigError("memory policy has capacity 0: normal frames are never stored")
        return self._free_or_oldest(store, range(self.pinned, self.num_slots))

    @staticmethod
    def _free_or_oldest(store: MemoryStore, slots: range) -> int:
        held = [(store.frame_of_slot[s], s) for s in slots]
        free = [s for f, s in held if f is None]
        if free:
            return free[0]
        return min(held)[1]

    def add_keyframe(self, store: MemoryStore, keys: Sequence[Tensor], values: Sequence[Tensor],
                     frame: int) -> int:
        slot = self.keyframe_slot(store)
        store.write(slot, keys, values, frame)
        return slot

    def maybe_add(self, store: MemoryStore, keys: Sequence[Tensor], values: Sequence[Tensor],
                  frame: int) -> int | None:
        """Memorise ``frame`` if the gap says so; returns the slot used, or None."""
        if not self.should_add(store, frame):
            return None
        slot = self.frame_slot(store)
        store.write(slot, keys, values, frame)
        return slot
