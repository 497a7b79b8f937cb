"""Keyframe Processor: shapes (binary, semantic, text-guided, paper), audio guidance that works (overfit),
plus the shared helpers in models.common and models.losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coprop.errors import ConfigError, WeightsError
from coprop.models.common import count_parameters, prepare_frames, resize_logits
from coprop.models.config import get_config
from coprop.models.keyframe import KeyframeProcessor
from coprop.models.losses import segmentation_loss
from models_util import fit, one_thread, two_source_scene  # noqa: F401  (one_thread is a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapes_binary_and_semantic():
    x, a = torch.randn(2, 3, 96, 96), torch.randn(2, 1, 96, 64)
    assert KeyframeProcessor(get_config("tiny"))(x, a).shape == (2, 1, 96, 96)
    assert KeyframeProcessor(get_config("tiny", num_classes=5))(x, a).shape == (2, 5, 96, 96)


def test_text_guided_variant_is_the_same_module():
    cfg = get_config("tiny", guidance="text", num_text_labels=7, num_classes=3)
    m = KeyframeProcessor(cfg)
    assert not hasattr(m, "audio_encoder")
    x = torch.randn(2, 3, 64, 64)
    out = m(x, None, torch.tensor([0, 6]))
    assert out.shape == (2, 3, 64, 64)
    assert not torch.allclose(out[0], m(x, None, torch.tensor([1, 6]))[0])  # the label steers the output
    with pytest.raises(ValueError, match="text_labels"):
        m(x, torch.randn(2, 1, 96, 64))
    with pytest.raises(ConfigError, match="num_text_labels"):
        KeyframeProcessor(get_config("tiny", guidance="text"))


def test_audio_required_when_audio_guided():
    with pytest.raises(ValueError, match="audio"):
        KeyframeProcessor(get_config("tiny"))(torch.randn(1, 3, 64, 64))


def test_overfits_one_frame():
    img, audio, masks = two_source_scene()
    m = KeyframeProcessor(get_config("tiny", image_size=64))
    torch.manual_seed(0)
    j = fit(m, (img[None], audio[:1]), masks[:1], steps=80)
    assert j.item() > 0.9


def test_audio_decides_which_object():
    """Same image, two sounds -> two different masks: only possible if the audio path steers the decoder."""
    img, audio, masks = two_source_scene()
    torch.manual_seed(0)
    m = KeyframeProcessor(get_config("tiny", image_size=64))
    j = fit(m, (img[None].repeat(2, 1, 1, 1), audio), masks, steps=150)
    assert j.min().item() > 0.9, j


def test_paper_config_one_224_frame(tmp_path, monkeypatch):
    monkeypatch.setenv("COPROP_PRETRAINED", str(tmp_path))
    with pytest.raises(WeightsError, match="vggish-10086976.pth"):
        KeyframeProcessor(get_config("paper"))  # fails before building anything large
    m = KeyframeProcessor(get_config("paper"), allow_random=True).eval()
    assert m.backbone.channels == [64, 128, 320, 512]
    with torch.no_grad():
        out = m(torch.randn(1, 3, 224, 224), torch.randn(1, 1, 96, 64))
    assert out.shape == (1, 1, 224, 224) and torch.isfinite(out).all()
    assert count_parameters(m) > count_parameters(m, trainable_only=True)  # VGGish frozen


def test_prepare_frames_and_resize_logits():
    frames = np.zeros((2, 30, 40, 3), np.uint8)
    frames[1] = 255
    x = prepare_frames(frames, 32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]))
    torch.testing.assert_close(x[1, :, 5, 5], torch.tensor([0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]))
    assert torch.equal(prepare_frames(torch.from_numpy(frames), 32), x)
    logits = torch.randn(2, 3, 4, 8, 8)
    assert resize_logits(logits, (30, 40)).shape == (2, 3, 4, 30, 40)


def test_segmentation_loss_binary_semantic_and_valid():
    target = torch.zeros(2, 3, 16, 16, dtype=torch.long)
    target[..., 4:12, 4:12] = 1
    good = (target.float() * 2 - 1)[:, :, None] * 10
    bad = -good
    assert segmentation_loss(good, target, 1) < 0.01 < segmentation_loss(bad, target, 1)
    valid = torch.zeros(2, 3, dtype=torch.bool)
    valid[0, 0] = True
    mixed = good.clone()
    mixed[1] = bad[1]  # wrong only where there is no GT
    assert segmentation_loss(mixed, target, 1, valid=valid) < 0.01
    none = segmentation_loss(mixed.requires_grad_(), target, 1, valid=torch.zeros_like(valid))
    none.backward()
    assert none.item() == 0.0
    sem_target = target * 2  # classes {0, 2} of K = 3
    sem_logits = torch.nn.functional.one_hot(sem_target, 3).permute(0, 1, 4, 2, 3).float() * 10
    assert segmentation_loss(sem_logits, sem_target, 3) < 0.01
    assert segmentation_loss(sem_logits, sem_target, 3, dice=True) < 0.05
    assert segmentation_loss(sem_logits[..., ::2, ::2], sem_target, 3) < 0.01  # logits upsampled to target
    with pytest.raises(ValueError, match="num_classes"):
        segmentation_loss(sem_logits, sem_target, 1)


def test_prepare_audio_gives_one_example_per_frame():
    from coprop.data.clip import Clip, avsbench_frame_times
    from coprop.models.common import prepare_audio

    t = np.arange(3 * 16000) / 16000.0
    clip = Clip(frames=np.zeros((3, 8, 8, 3), np.uint8), waveform=(0.3 * np.sin(2 * np.pi * 440 * t)).astype(
        np.float32), frame_times=avsbench_frame_times(3), meta={"name": "tone", "subset": "s4"})
    a = prepare_audio(clip)
    assert a.shape == (3, 1, 96, 64) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert a.max() > -4.0  # the tone is there, not the log(0.01) floor
