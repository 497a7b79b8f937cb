"""Bounded memory: storage/policy on their own, then the tiny propagator over a 300-frame clip."""
from __future__ import annotations

import pytest
import torch

from coprop.errors import ConfigError, DataError
from coprop.models.memory import MemoryPolicy, MemoryStore




def _entry(frame: int, layers: int = 2, B: int = 1, heads: int = 2, N: int = 16, d: int = 4):
    """Per-layer (keys, values) whose every element equals the frame index, so slots can be traced."""
    keys = [torch.full((B, heads, N, d), float(frame)) for _ in range(layers)]
    values = [torch.full((B, heads, N, d), float(frame) + 0.5) for _ in range(layers)]
    return keys, values


def test_policy_pins_keyframe_memorises_every_gap_and_evicts_oldest():
    policy = MemoryPolicy(gap=5, capacity=3, pinned=1)
    store = policy.new_store()
    policy.add_keyframe(store, *_entry(0), frame=0)
    added = [t for t in range(1, 300) if policy.maybe_add(store, *_entry(t), frame=t) is not None]
    assert added == list(range(5, 300, 5))
    # keyframe kept; the 3 newest memorised frames kept (FIFO)
    assert sorted(store.frames) == [0, 285, 290, 295]
    k, v = store.read(1)
    assert k.shape == (1, 2, 4 * 16, 4)
    assert sorted(set(k.flatten().tolist())) == [0.0, 285.0, 290.0, 295.0]
    assert sorted(set(v.flatten().tolist())) == [0.5, 285.5, 290.5, 295.5]


def test_store_bytes_flat_after_warmup_and_count_bounded():
    policy = MemoryPolicy(gap=2, capacity=4, pinned=1)
    store = policy.new_store()
    policy.add_keyframe(store, *_entry(0), frame=0)
    warm = store.nbytes()
    assert warm == 2 * 2 * (1 * 2 * policy.num_slots * 16 * 4) * 4  # layers * (K,V) * elements * fp32
    for t in range(1, 300):
        policy.maybe_add(store, *_entry(t), frame=t)
        assert len(store) <= policy.capacity + policy.pinned
        assert store.nbytes() == warm


def test_partial_store_reads_only_occupied_slots_and_full_store_is_a_view():
    policy = MemoryPolicy(gap=1, capacity=2)
    store = policy.new_store()
    policy.add_keyframe(store, *_entry(0), frame=0)
    assert store.read(0)[0].shape[2] == 16
    policy.maybe_add(store, *_entry(1), frame=1)
    policy.maybe_add(store, *_entry(2), frame=2)
    k, _ = store.read(0)
    assert k.shape[2] == 48 and k.data_ptr() == store.keys[0].data_ptr()


def test_more_keyframes_than_pinned_slots_replace_the_oldest_keyframe_only():
    policy = MemoryPolicy(gap=1, capacity=2, pinned=2)
    store = policy.new_store()
    for t in range(6):
        if t in (0, 3, 5):
            policy.add_keyframe(store, *_entry(t), frame=t)
        else:
            policy.maybe_add(store, *_entry(t), frame=t)
    # normal frames 1, 2 filled the normal slots, 4 evicted 1; keyframe 5 evicted keyframe 0, not a normal frame
    assert sorted(store.frames) == [2, 3, 4, 5]


def test_gap_zero_keeps_keyframes_only_and_bad_settings_are_errors():
    policy = MemoryPolicy(gap=0, capacity=4)
    store = policy.new_store()
    policy.add_keyframe(store, *_entry(0), frame=0)
    assert all(policy.maybe_add(store, *_entry(t), frame=t) is None for t in range(1, 20))
    assert store.frames == [0]
    with pytest.raises(ConfigError):
        MemoryPolicy(gap=-1, capacity=2)
    with pytest.raises(DataError):
        store.write(0, *_entry(1, N=9), frame=1)


def test_training_writes_keep_gradients():
    store = MemoryStore(2)
    a = torch.ones(1, 1, 3, 2, requires_grad=True)
    b = torch.ones(1, 1, 3, 2, requires_grad=True)
    store.write(0, [a * 2], [a * 3], frame=0)
    store.write(1, [b * 5], [b * 7], frame=1)
    k, v = store.read(0)
    (k.sum() + v.sum()).backward()
    assert torch.allclose(a.grad, torch.full_like(a, 5.0)) and torch.allclose(b.grad, torch.full_like(b, 12.0))


@pytest.mark.slow
def test_propagator_memory_is_flat_over_300_frames():
    from coprop.models.config import get_config
    from coprop.models.propagator import AudioInsertPropagator

    torch.manual_seed(0)
    cfg = get_config("tiny", image_size=64, long_term_gap_test=5, memory_capacity=4)
    model = AudioInsertPropagator(cfg).eval()
    frames = torch.randn(4, 3, 64, 64)
    audio = torch.randn(4, 1, 96, 64)
    mask = torch.zeros(1, 64, 64, dtype=torch.long)
    mask[:, 20:40, 16:36] = 1
    sizes, counts, memorised = [], [], {0}
    with torch.inference_mode():
        state = model.start(frames[:1], audio[:1], mask, num_objects=1)
        for t in range(1, 300):
            _, state = model.step(frames[t % 4: t % 4 + 1], audio[t % 4: t % 4 + 1], state)
            sizes.append(state.nbytes())
            counts.append(len(state.store))
            memorised.update(state.store.frames)
    assert max(counts) == cfg.memory_capacity + 1
    assert 0 in state.store.frames                       # the keyframe is never evicted
    assert sorted(state.store.frames)[1:] == [280, 285, 290, 295]
    assert len(set(sizes)) == 1                          # allocated once, at the keyframe, then overwritten
    assert sorted(memorised) == list(range(0, 300, 5))   # every 5th frame entered memory
