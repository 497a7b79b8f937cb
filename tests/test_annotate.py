"""GT control points, keyframe subset, MOC selection and Table 3 statistics on hand-made masks."""
from __future__ import annotations

import numpy as np
import pytest

from coprop.controlpoints.annotate import (clip_control_points, control_points_from_masks, keyframe_subset,
                                           moc_selection, segment_lengths, table3_stats)
from coprop.data.clip import Clip, avsbench_frame_times
from coprop.errors import DataError

S = 20  # 400 pixels: the 0.1 % area floor is 0.4 px, so a single pixel counts


def box(y0, x0, h, w, value=1):
    m = np.zeros((S, S), np.int64)
    m[y0:y0 + h, x0:x0 + w] = value
    return m


def clip_of(masks, mode="binary", gt_available=None, **meta):
    masks = np.stack(masks)
    T = len(masks)
    return Clip(frames=np.zeros((T, S, S, 3), np.uint8), waveform=np.zeros(T * 16000, np.float32),
                frame_times=avsbench_frame_times(T), masks=masks,
                gt_available=None if gt_available is None else np.asarray(gt_available),
                meta={"name": meta.pop("name", "c"), "mode": mode, **meta})


def test_binary_rule_emptiness_and_iou():
    A, A_moved, B, E = box(0, 0, 8, 8), box(1, 1, 8, 8), box(10, 10, 8, 8), np.zeros((S, S), np.int64)
    # A -> slightly moved A (IoU 49/79 = 0.62: same object) -> B (IoU 0) -> empty -> empty -> B
    c = control_points_from_masks(np.stack([A, A_moved, B, E, E, B]), "binary")
    assert c == [1, 0, 1, 1, 0, 1]
    # the threshold is a parameter: at 0.7 the move alone counts as a change
    assert control_points_from_masks(np.stack([A, A_moved]), "binary", iou_threshold=0.7) == [1, 1]


def test_binary_rule_area_floor():
    speck = np.zeros((S, S), np.int64)
    speck[0, 0] = 1                               # 1 px of 400 = 0.25 %
    E = np.zeros((S, S), np.int64)
    assert control_points_from_masks(np.stack([E, speck]), "binary") == [1, 1]
    assert control_points_from_masks(np.stack([E, speck]), "binary", area_floor=0.01) == [1, 0]


def test_semantic_rule_class_sets():
    a = box(0, 0, 6, 6, 3)
    ab = a + box(10, 10, 6, 6, 5)
    a_moved = box(8, 8, 6, 6, 3)                  # same class elsewhere: not a change
    c = control_points_from_masks(np.stack([a, a_moved, ab, ab, np.zeros((S, S), np.int64)]), "semantic")
    assert c == [1, 0, 1, 0, 1]


def test_unannotated_frames_are_not_compared():
    A, B = box(0, 0, 8, 8), box(10, 10, 8, 8)
    masks = np.stack([A, B, B, A, A])
    assert control_points_from_masks(masks, "binary", gt_available=[1, 0, 1, 1, 1]) == [1, 0, 0, 1, 0]
    # S4 train: frame 0 annotated only
    assert control_points_from_masks(masks, "binary", gt_available=[1, 0, 0, 0, 0]) == [1, 0, 0, 0, 0]
    with pytest.raises(ValueError):
        control_points_from_masks(masks, "binary", gt_available=[1, 0])


def test_clip_level_helpers():
    A, B = box(0, 0, 8, 8), box(10, 10, 8, 8)
    steady = clip_of([A, A, A], name="steady", sounding=[["dog"]] * 3)
    switch = clip_of([A, B, B], name="switch", sounding=[["dog"], ["car"], ["car"]])
    sem = clip_of([box(0, 0, 6, 6, 2), box(0, 0, 6, 6, 2) + box(10, 10, 6, 6, 4), box(0, 0, 6, 6, 4)],
                  mode="semantic", name="sem")
    train = clip_of([A, B, B], gt_available=[1, 0, 0], name="train")
    clips = [steady, switch, sem, train]
    assert clip_control_points(switch) == [1, 1, 0]
    assert clip_control_points(switch, source="meta") == [1, 1, 0]
    assert clip_control_points(sem) == [1, 1, 1]
    assert moc_selection(clips) == [1, 2]
    assert keyframe_subset(clips) == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0)]
    assert keyframe_subset(clips, source=lambda clip: [1, 1, 1]) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                                                                     (1, 2), (2, 0), (2, 1), (2, 2), (3, 0)]
    with pytest.raises(DataError, match="sounding"):
        clip_control_points(sem, source="meta")

    df = table3_stats({"binary": [steady, switch], "semantic": [sem], "nometa": [train]})
    rows = df.set_index("Dataset")
    assert list(df.columns) == ["Dataset", "Videos", "Avg.Cate", "Category Changes (%)"]
    assert rows.loc["binary", "Videos"] == 2 and rows.loc["binary", "Avg.Cate"] == 1.5   # {dog}, {dog, car}
    assert rows.loc["binary", "Category Changes (%)"] == 50.0
    assert rows.loc["semantic", "Avg.Cate"] == 2.0 and rows.loc["semantic", "Category Changes (%)"] == 100.0
    assert rows.loc["nometa", "Avg.Cate"] == 1.0                 # no meta: number of GT segments


def test_segment_lengths():
    assert segment_lengths([1, 0, 0, 1, 0]) == [3, 2]
    assert segment_lengths([1]) == [1]
    assert segment_lengths([1, 1, 1]) == [1, 1, 1]
