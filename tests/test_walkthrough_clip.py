"""The walkthrough's clip rule: the first clip whose sounding object is replaced by a different one."""
from __future__ import annotations

import numpy as np
import pytest

from coprop import experiments as E
from coprop.data.clip import Clip, avsbench_frame_times
from coprop.errors import ConfigError


def _clip(name, sounding, boxes=None):
    """5 frames; GT mask = a box per sounding object (object 'a' left, anything else right)."""
    T, H, W = len(sounding), 16, 16
    masks = np.zeros((T, H, W), np.int64)
    for t, who in enumerate(sounding):
        for obj in who:
            if obj == "a":
                masks[t, 2:8, 1:7] = 1
            else:
                masks[t, 8:16, 8:16] = 1
    return Clip(np.zeros((T, H, W, 3), np.uint8), np.zeros(16000 * T, np.float32), avsbench_frame_times(T), masks,
                np.ones(T, bool), {"name": name, "mode": "binary", "sounding": sounding})


def test_prefers_a_replacement_with_frames_after_it():
    silence_to_sound = _clip("s", [[], [], ["a"], ["a"], ["a"]])
    joins = _clip("j", [["a"], ["a"], ["a", "b"], ["a", "b"], ["a", "b"]])
    late = _clip("l", [["a"], ["a"], ["a"], ["a"], ["b"]])         # replaced on the last frame: nothing to follow
    replaced = _clip("r", [["a"], ["a"], ["b"], ["b"], ["b"]])
    clip, why = E.choose_walkthrough_clip([silence_to_sound, joins, late, replaced])
    assert clip.name == "r" and "frame 2, from a to b" in why and "number 3" in why
    clip, why = E.choose_walkthrough_clip([silence_to_sound, joins, late])
    assert clip.name == "j" and "a to a+b" in why
    clip, why = E.choose_walkthrough_clip([silence_to_sound])
    assert clip.name == "s" and "silence" not in why and "first with any change" in why
    assert E.choose_walkthrough_clip([replaced, joins], 1)[0].name == "j"
    with pytest.raises(ConfigError, match="out of range"):
        E.choose_walkthrough_clip([replaced], 3)


def test_binary_gt_without_schedule_uses_two_nonempty_masks():
    c = _clip("r", [["a"], ["a"], ["b"], ["b"], ["b"]])
    del c.meta["sounding"]
    assert E.sounding_objects(c, 0) is None
    assert E.object_conversion(c) == 2
    c2 = _clip("s", [[], [], ["a"], ["a"], ["a"]])
    del c2.meta["sounding"]
    assert E.object_conversion(c2) is None
