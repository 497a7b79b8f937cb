"""Simultaneous baseline: joint clip-level fusion (frames see each other's audio), plug-in keyframe interface,
and a 5-frame clip with a source conversion that it can overfit."""
from __future__ import annotations

import pytest
import torch

from coprop.metrics import binary_jaccard
from coprop.models.config import get_config
from coprop.models.simultaneous import FramewiseBaseline, SimultaneousBaseline
from models_util import fit, one_thread, two_source_scene  # noqa: F401  (one_thread is a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapes_and_frame_interfaces():
    torch.manual_seed(0)
    m = SimultaneousBaseline(get_config("tiny", num_classes=3)).eval()
    frames, audio = torch.randn(2, 4, 3, 64, 64), torch.randn(2, 4, 1, 96, 64)
    with torch.no_grad():
        out = m(frames, audio)
        assert out.shape == (2, 4, 3, 64, 64)
        torch.testing.assert_close(m.predict_frames(frames[1], audio[1]), out[1], rtol=1e-4, atol=1e-4)
        kf = m.as_keyframe_model()
        assert isinstance(kf, FramewiseBaseline) and kf.baseline is m
        assert kf(frames[:, 0], audio[:, 0]).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match=r"\[B,T,3,S,S\]"):
        m(frames[0], audio[0])


def test_fusion_is_joint_over_the_clip():
    """One attention sequence holds every frame's image and audio tokens, so it grows with T, and a frame's
    output depends on the audio of other frames (the coupling that causes temporal misalignment)."""
    torch.manual_seed(0)
    cfg = get_config("tiny")
    m = SimultaneousBaseline(cfg).eval()
    lengths = []
    m.fusion[0].register_forward_hook(lambda mod, args, out: lengths.append(args[0].shape[1]))
    S = 64
    tokens_per_frame = (S // 32) ** 2 + cfg.audio_tokens
    frames, audio = torch.randn(1, 5, 3, S, S), torch.randn(1, 5, 1, 96, 64)
    with torch.no_grad():
        out = m(frames, audio)
        m(frames[:, :2], audio[:, :2])
        audio2 = audio.clone()
        audio2[0, 3] = torch.randn(1, 96, 64)
        out2 = m(frames, audio2)
    assert lengths == [5 * tokens_per_frame, 2 * tokens_per_frame, 5 * tokens_per_frame]
    assert not torch.allclose(out[0, 0], out2[0, 0])


def test_overfits_a_clip_with_a_source_conversion():
    """5 frames of the same scene; the sounding disk switches after frame 1: the mask must follow the audio."""
    img, audio, masks = two_source_scene()
    order = torch.tensor([0, 0, 1, 1, 1])
    frames, clip_audio, target = img[None, None].repeat(1, 5, 1, 1, 1), audio[order][None], masks[order][None]
    torch.manual_seed(0)
    m = SimultaneousBaseline(get_config("tiny", image_size=64))
    j = fit(m, (frames, clip_audio), target, steps=150)
    assert j.min().item() > 0.9, j
    m.eval()
    with torch.no_grad():
        j_kf = binary_jaccard(m.predict_frames(frames[0], clip_audio[0])[:, 0], target[0])
    assert j_kf.min().item() > 0.9
