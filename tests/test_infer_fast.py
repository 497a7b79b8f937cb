"""The pieces that make ``coprop infer`` faster give the same masks as the plain path: encoding ahead in another
thread (handed to push as image= and encoded=), logits resized in the writer, BatchNorm folded into the
backbone's convolutions, the PNG writer, the uint8 resize of the model input (within one grey level of the
float one)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from coprop.infer_fast import fuse_conv_bn
from coprop.errors import DataError
from coprop.infer_stream import MaskPainter, logits_to_mask, model_input, png_bytes, save_mask_png
from coprop.models.common import prepare_frames, resize_logits
from coprop.models.config import get_config
from coprop.models.keyframe import KeyframeProcessor
from coprop.models.propagator import AudioInsertPropagator
from coprop.pipeline import CoProp
from coprop.pipeline.predict import encode_frames

S, H, W, T = 64, 45, 70, 5


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    cfg = get_config("tiny", image_size=S)
    return CoProp(KeyframeProcessor(cfg, allow_random=True).eval(), AudioInsertPropagator(cfg).eval(), None, cfg)


def _video():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, size=(T, H, W, 3), dtype=np.uint8)
    logmel = rng.normal(-2, 1, size=(T, 96, 64)).astype(np.float32)
    return frames, logmel


def test_encoding_ahead_in_another_thread_gives_the_same_logits(pipe, monkeypatch):
    """coprop infer's split: the decode thread prepares and encodes frames in batches (encode_frames), the model
    thread pushes each with its image and encoding, and never encodes or prepares a frame itself."""
    import coprop.pipeline.stream as stream_module

    frames, logmel = _video()
    cps = [1, 0, 0, 1, 0]
    small = [model_input(f, S) for f in frames]
    plain = pipe.stream(cps)
    ref = [plain.push(small[t][0], logmel[t]) for t in range(T)]
    encoded = {}

    def encode_all():
        with torch.inference_mode():
            for ts in ([0, 1, 2], [3, 4]):                      # batches, as the decode thread makes them
                got = encode_frames(pipe.propagator, torch.cat([small[t][1] for t in ts]),
                                    torch.as_tensor(logmel[ts])[:, None])
                encoded.update(zip(ts, got))
    th = threading.Thread(target=encode_all)
    th.start()
    th.join()
    calls = []
    encode = pipe.propagator.encode
    monkeypatch.setattr(pipe.propagator, "encode", lambda *a, **k: calls.append("encode") or encode(*a, **k))
    prepare = stream_module.prepare_frames
    monkeypatch.setattr(stream_module, "prepare_frames", lambda *a, **k: calls.append("prepare") or prepare(*a, **k))
    fast = pipe.stream(cps)
    out = [fast.push(small[t][0], logmel[t], image=small[t][1], encoded=encoded[t]) for t in range(T)]
    assert calls == []                                          # every frame's encoding and image were used
    assert fast.keyframes == plain.keyframes == [0, 3]
    for t in range(T):
        assert out[t].shape == (1, S, S)
        assert torch.allclose(out[t], ref[t], atol=1e-4)       # batched encoding: equal up to float rounding
        full, ref_full = logits_to_mask(out[t], (H, W), False), resize_logits(ref[t], (H, W))[0]
        clear = (ref_full.abs() > 1e-3).numpy()                 # pixels not within rounding of the threshold
        assert np.array_equal(full[clear], (ref_full > 0).numpy().astype(np.uint8)[clear])


def test_a_pushed_image_replaces_preparing_the_frame(pipe):
    frames, logmel = _video()
    a, b = pipe.stream([1, 0, 0, 0]), pipe.stream([1, 0, 0, 0])
    for t in range(3):
        image = prepare_frames(frames[t][None], S)
        assert torch.equal(a.push(frames[t], logmel[t]), b.push(frames[t], logmel[t], image=image))
    with pytest.raises(DataError, match=r"\[1,3,64,64\]"):
        b.push(frames[3], logmel[3], image=prepare_frames(frames[3][None], S + 32))


def test_uint8_resize_is_within_one_grey_level_of_the_float_resize():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    small, a = model_input(rgb, 64)
    b = prepare_frames(rgb[None], 64)
    assert small.shape == (64, 64, 3) and small.dtype == np.uint8 and a.shape == b.shape == (1, 3, 64, 64)
    assert torch.equal(a, prepare_frames(small[None], 64))
    step = 1.0 / 255 / min(0.229, 0.224, 0.225)                # one grey level after ImageNet normalisation
    assert float((a - b).abs().max()) <= step


def test_folding_batchnorm_keeps_the_backbone_outputs():
    torch.manual_seed(0)
    prop = AudioInsertPropagator(get_config("tiny", image_size=S)).eval()
    for m in prop.backbone.modules():                           # non-trivial statistics to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(2, 3, S, S)
    with torch.no_grad():
        before = prop.backbone(x)
        n = fuse_conv_bn(prop.backbone, torch.zeros(1, 3, S, S))
        after = prop.backbone(x)
    assert n > 10
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prop.backbone.modules())
    for a, b in zip(before, after):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_folding_is_undone_when_the_outputs_disagree(monkeypatch):
    import coprop.infer_fast as fast

    torch.manual_seed(0)
    prop = AudioInsertPropagator(get_config("tiny", image_size=S)).eval()
    bns = [m for m in prop.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def wrong(conv, bn):
        out = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              conv.dilation, conv.groups, bias=True)
        return out
    monkeypatch.setattr(fast, "_folded", wrong)
    assert fuse_conv_bn(prop.backbone, torch.zeros(1, 3, S, S)) == 0
    assert [m for m in prop.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)] == bns


def test_png_writer_round_trips_binary_and_palette_masks(tmp_path):
    from coprop.data.images import voc_palette

    rng = np.random.default_rng(3)
    binary = (rng.random((37, 53)) > 0.6).astype(np.uint8)
    save_mask_png(tmp_path / "b.png", binary, semantic=False)
    img = Image.open(tmp_path / "b.png")
    assert img.mode == "L" and np.array_equal(np.asarray(img), binary * 255)
    classes = rng.integers(0, 71, size=(29, 41)).astype(np.uint8)
    save_mask_png(tmp_path / "s.png", classes, semantic=True)
    img = Image.open(tmp_path / "s.png")
    assert img.mode == "P" and np.array_equal(np.asarray(img), classes)
    assert np.array_equal(np.array(img.getpalette()).reshape(-1, 3)[:256], voc_palette(256))
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((4, 4), np.int64))


def test_painter_blends_half_and_draws_the_outline():
    frame = np.full((6, 8, 3), 100, np.uint8)
    mask = np.zeros((6, 8), np.uint8)
    mask[1:5, 2:7] = 1
    out = MaskPainter(False)(frame, mask)
    red = np.array([230, 25, 75], np.uint8)
    assert np.array_equal(out[2, 3], (frame[2, 3].astype(int) + red) // 2)      # inside: half and half
    assert np.array_equal(out[1, 2], red) and np.array_equal(out[4, 6], red)    # outline: full colour
    assert np.array_equal(out[0, 0], frame[0, 0]) and np.array_equal(out[5, 7], frame[5, 7])
    assert MaskPainter(False)(frame, np.zeros_like(mask)) is frame
