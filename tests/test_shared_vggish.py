"""One frozen VGGish per pipeline (issue 10 item 5) and TPAVI on log-mel input as a plug-in keyframe model.

Every model here loads the same VGGish file the test writes (random weights in the torchvggish layout), as a
real pipeline loads vggish-10086976.pth into each model that needs it.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from coprop.data.clip import Clip, avsbench_frame_times
from coprop.models.audio_encoder import VGGish, load_vggish, share_vggish
from coprop.models.common import prepare_frames
from coprop.models.config import get_config
from coprop.models.keyframe import KeyframeProcessor
from coprop.models.propagators import build_propagator
from coprop.models.published.tpavi import build_tpavi
from coprop.models.published.tpavi_coprop import tpavi_segmenter
from coprop.pipeline import CoProp

VGGISH_BYTES = 72_141_184 * 4   # torchvggish's VGG: 72.1 M fp32 values


@pytest.fixture(scope="module")
def vggish_file(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "vggish-10086976.pth"
    torch.save(VGGish().state_dict(), path)
    return path


def unique_bytes(*models) -> int:
    """Bytes of the distinct parameter/buffer storages of ``models`` (a shared tensor counts once)."""
    seen = {}
    for m in models:
        for t in list(m.parameters()) + list(m.buffers()):
            seen[t.data_ptr()] = t.numel() * t.element_size()
    return sum(seen.values())


def small_clip(T: int) -> Clip:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(T, 40, 56, 3)).astype(np.uint8)
    logmel = rng.normal(-2, 1, size=(T, 1, 96, 64)).astype(np.float32)
    return Clip(frames=frames, waveform=np.zeros(16000 * T, np.float32), frame_times=avsbench_frame_times(T),
                masks=np.zeros((T, 40, 56), np.int64), meta={"name": "c", "mode": "binary"}, logmel=logmel)


def test_share_vggish_merges_equal_copies_only(vggish_file):
    cfg = get_config("tiny", image_size=64, audio_encoder="vggish", audio_tokens=24, audio_weights=str(vggish_file))
    kp = KeyframeProcessor(cfg, allow_random=True).eval()
    prop = build_propagator(cfg, allow_random=True).eval()
    assert kp.audio_encoder.vggish is not prop.guidance.audio.vggish
    x, a = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64)
    with torch.no_grad():
        before = kp(x, a)
    separate = unique_bytes(kp, prop)
    pipe = CoProp(kp, prop)
    assert kp.audio_encoder.vggish is prop.guidance.audio.vggish
    assert pipe.shared_vggish_bytes == VGGISH_BYTES
    assert unique_bytes(kp, prop) == separate - VGGISH_BYTES        # parameter memory counts VGGish once
    with torch.no_grad():
        torch.testing.assert_close(kp(x, a), before, atol=0, rtol=0)
    # a VGGish with other weights is not merged (it would change that model's output)
    other = torch.nn.ModuleDict({"vggish": load_vggish(None)})
    with pytest.warns(UserWarning, match="other weights"):
        assert share_vggish(kp, other) == 0
    assert other["vggish"] is not kp.audio_encoder.vggish
    # passing the loaded copy at construction never builds a second one
    prop2 = build_propagator(cfg, allow_random=True, vggish=kp.audio_encoder.vggish)
    assert prop2.guidance.audio.vggish is kp.audio_encoder.vggish


def test_tpavi_on_logmel_is_a_plug_in_keyframe_model(vggish_file):
    """TPAVI + the pipeline's VGGish as the clip-level keyframe model of CoProp (paper Fig. 4), at 32 px."""
    torch.manual_seed(0)
    cfg = get_config("tiny", image_size=64, audio_encoder="vggish", audio_tokens=24, audio_weights=str(vggish_file))
    prop = build_propagator(cfg, allow_random=True).eval()
    seg = tpavi_segmenter("tpavi_r50_s4", build_tpavi("tpavi_r50_s4").state_dict(), vggish=vggish_file,
                          image_size=32)
    assert seg.cfg.image_size == 32 and seg.cfg.num_classes == 1 and not seg.training
    clip = small_clip(7)
    frames = prepare_frames(clip.frames, 32)
    logmel = torch.from_numpy(clip.logmel)
    with torch.inference_mode():
        out = seg.predict_frames(frames, logmel)                     # 7 frames -> padded to 10 by the last one
        emb = load_vggish(vggish_file)(logmel)[1]
        first = seg.tpavi(frames[:5], emb[:5])
        rest = seg.tpavi(torch.cat([frames[5:], frames[6:].expand(3, -1, -1, -1)]),
                         torch.cat([emb[5:], emb[6:].expand(3, -1)]))
    assert out.shape == (7, 1, 32, 32)
    torch.testing.assert_close(out[:5], first, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[5:], rest[:2], atol=1e-5, rtol=1e-5)
    with torch.inference_mode():  # the simultaneous-baseline call: a batch of clips [B,T,...] -> [B,T,K,S,S]
        batch = seg(frames[:5].expand(2, -1, -1, -1, -1), logmel[:5].expand(2, -1, -1, -1, -1))
    assert batch.shape == (2, 5, 1, 32, 32)
    torch.testing.assert_close(batch, first.expand(2, -1, -1, -1, -1), atol=1e-5, rtol=1e-5)
    pipe = CoProp(seg, prop)
    assert seg.vggish is prop.guidance.audio.vggish and pipe.shared_vggish_bytes == VGGISH_BYTES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = pipe.predict(clip, control_points=[1, 0, 0, 0, 0, 1, 0])
    assert pred.keyframes == [0, 5] and pred.logits.shape == (7, 1, 40, 56)
    # keyframe context = its segment: frames 0-4 (one window), frames 5-6 (padded with frame 6)
    for t, key in ((0, first[0]), (5, rest[0])):
        expected = torch.nn.functional.interpolate(key[None], size=(40, 56), mode="bilinear", align_corners=False)
        torch.testing.assert_close(pred.logits[t], expected[0], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="log-mel"):
        seg(frames[None], None)


@pytest.mark.slow
def test_paper_pipeline_holds_one_vggish(vggish_file):
    """The `paper` Keyframe Processor and propagator (random backbones, the same VGGish file) share one VGGish."""
    cfg = get_config("paper", audio_weights=str(vggish_file))
    kp = KeyframeProcessor(cfg, allow_random=True)
    prop = build_propagator(cfg, allow_random=True)
    separate = unique_bytes(kp, prop)
    pipe = CoProp(kp, prop)
    assert kp.audio_encoder.vggish is prop.guidance.audio.vggish
    assert pipe.shared_vggish_bytes == VGGISH_BYTES
    assert unique_bytes(kp, prop) == separate - VGGISH_BYTES
