"""Training samples: the keyframe subset is the annotate module's, propagation targets stop at the next
control point, and every random choice is a function of (seed, epoch, index)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coprop.train.data import (ClipSamples, FrameSamples, PreparedClip, PropagationSamples, is_keyframe,
                               prepare_clips)


@pytest.fixture(scope="module")
def ms3(synth_root):
    from coprop.data import open_dataset

    clips = open_dataset(synth_root, "ms3", "train")
    return clips, prepare_clips(clips, 64)


def test_keyframe_subset_matches_annotate(ms3):
    from coprop.controlpoints.annotate import keyframe_subset

    clips, prepared = ms3
    frames = FrameSamples(prepared, select=is_keyframe)
    assert frames.index == keyframe_subset(clips)
    assert len(FrameSamples(prepared)) == sum(int(c.gt.sum()) for c in prepared) >= len(frames)


def test_frame_samples_shapes_and_deterministic_flips(ms3):
    _, prepared = ms3
    ds = FrameSamples(prepared, seed=3)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["audio"].shape == (1, 96, 64)
    assert item["mask"].dtype == torch.long and set(item["mask"].unique().tolist()) <= {0, 1}
    flips = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        a, b = ds[1], ds[1]
        assert torch.equal(a["image"], b["image"])          # same (seed, epoch, index): same sample
        flips.append(torch.equal(a["mask"], torch.from_numpy(prepared[ds.index[1][0]].masks[ds.index[1][1]]).long()))
    assert len(set(flips)) == 2, "flip augmentation never varies across epochs"


def _clip(masks: np.ndarray, gt: list[bool], cps: list[int]) -> PreparedClip:
    T, S = masks.shape[:2]
    return PreparedClip("c", np.zeros((T, S, S, 3), np.uint8), np.zeros((T, 1, 96, 64), np.float32),
                        masks.astype(np.uint8), np.array(gt), cps)


def _sample_of_length(ds: PropagationSamples, length: int) -> dict:
    """The first sample 0 of an epoch that holds ``length`` frames (the start frame is drawn per epoch)."""
    for epoch in range(30):
        ds.set_epoch(epoch)
        if len((item := ds[0])["frames"]) == length:
            return item
    raise AssertionError(f"no epoch drew a {length}-frame sample")


def test_propagation_targets_stop_at_the_next_control_point():
    masks = np.zeros((6, 32, 32), np.uint8)
    masks[:3, :8, :8] = 1
    masks[3:, 20:, 20:] = 1
    c = _clip(masks, [True] * 6, [1, 0, 0, 1, 0, 0])
    ds = PropagationSamples([c], "binary", window=4, seed=0, within_segment=True)
    assert ds.items[0][1] == [0, 1, 3, 4]                   # frame 2 and 5: nothing of their segment follows
    assert ds._weights(c, 0).tolist() == [True, True, False]
    assert ds._weights(c, 1).tolist() == [True, False, False]
    across = PropagationSamples([c], "binary", window=4, within_segment=False)
    assert across._weights(c, 1).tolist() == [True, True, True]
    for epoch in range(4):      # a sample ends at its last frame that counts: 3 frames from 0, 2 from 1, 3, 4
        ds.set_epoch(epoch)
        item = ds[0]
        L = len(item["frames"])
        assert L in (2, 3) and item["targets"].shape == (L - 1, 32, 32) and bool(item["weight"][-1])
        assert int(item["num_objects"]) == 1


def test_propagation_batches_pad_with_frames_that_do_not_count():
    masks = np.zeros((6, 32, 32), np.uint8)
    masks[:, :8, :8] = 1
    c = _clip(masks, [True] * 6, [1, 0, 0, 1, 0, 0])
    ds = PropagationSamples([c], "binary", window=4, seed=0, hflip=False)
    short, long = _sample_of_length(ds, 2), _sample_of_length(ds, 3)
    batch = ds.collate([short, long])
    assert batch["frames"].shape == (2, 3, 3, 32, 32) and batch["targets"].shape == (2, 2, 32, 32)
    assert batch["weight"].tolist() == [[True, False], [True, True]]
    assert torch.equal(batch["frames"][0, 2], short["frames"][1])      # padding repeats the last frame
    assert torch.equal(batch["frames"][1], long["frames"])


def test_semantic_identities_follow_the_keyframe_classes():
    masks = np.zeros((3, 32, 32), np.uint8)
    masks[:, :10] = 7
    masks[:, 20:] = 42
    masks[2, 10:12] = 9                                       # a class absent from the keyframe
    c = _clip(masks, [True] * 3, [1, 0, 0])
    ds = PropagationSamples([c], "semantic", window=3, hflip=False)
    item = _sample_of_length(ds, 3)                           # the one from frame 0
    assert int(item["num_objects"]) == 2
    assert set(item["first_mask"].unique().tolist()) == {0, 1, 2}
    assert (item["targets"][1][masks[2] == 9] == 0).all()     # unknown class -> background identity
    assert (item["targets"][0][masks[1] == 42] == 2).all()


def test_s4_train_has_nothing_to_propagate(synth_root):
    from coprop.data import open_dataset

    s4 = prepare_clips(open_dataset(synth_root, "s4", "train"), 64)
    assert all(c.gt.sum() == 1 for c in s4)
    assert len(PropagationSamples(s4, "binary", window=5)) == 0
    clips = ClipSamples(s4, seed=0)
    assert len(clips) == len(s4) and clips[0]["gt"].tolist() == [True, False, False, False, False]


def test_finetune_without_stage_one_says_what_to_do(ms3, tmp_path):
    from coprop.errors import WeightsError
    from coprop.models.config import get_config
    from coprop.train import finetune_keyframe

    with pytest.raises(WeightsError, match=r"keyframe\.safetensors: weight file not found.*notebook 03"):
        finetune_keyframe(get_config("tiny", image_size=64), ms3[1], None, tmp_path, epochs=1)


def test_identity_logits_map_back_to_binary_and_class_logits():
    from coprop.train.tasks import binary_from_identities, class_from_identities

    logits = torch.randn(2, 3, 4, 4)
    cls = class_from_identities(logits, [7, 42], 71)
    assert cls.shape == (2, 71, 4, 4)
    ids = logits.argmax(1)
    assert torch.equal(cls.argmax(1), torch.tensor([0, 7, 42])[ids])
    two = logits[:, :2]
    assert torch.allclose(torch.sigmoid(binary_from_identities(two))[:, 0], two.softmax(1)[:, 1], atol=1e-6)


def test_padding_frames_do_not_change_the_propagation_loss():
    """Why samples may end at their last frame that counts: propagation is causal, so frames after it (here the
    collate padding) leave the loss unchanged (eval mode: BatchNorm uses running statistics, no identity shuffle)."""
    from coprop.models.config import get_config
    from coprop.models.propagator import AudioInsertPropagator
    from coprop.train.tasks import PropagatorStep

    g = np.random.default_rng(0)
    masks = np.zeros((6, 32, 32), np.uint8)
    masks[:, 4:14, 6:16] = 1
    c = PreparedClip("c", g.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8),
                     g.normal(size=(6, 1, 96, 64)).astype(np.float32), masks, np.ones(6, bool), [1, 0, 0, 1, 0, 0])
    ds = PropagationSamples([c], "binary", window=4, seed=0, hflip=False)
    short, long = _sample_of_length(ds, 2), _sample_of_length(ds, 3)
    padded = {k: v[:1] for k, v in ds.collate([short, long]).items()}
    assert padded["frames"].shape[1] == 3
    torch.manual_seed(0)
    step = PropagatorStep(AudioInsertPropagator(get_config("tiny", image_size=32, token_stride=4)), "binary").eval()
    with torch.no_grad():
        assert torch.allclose(step(ds.collate([short])), step(padded), atol=1e-6)
