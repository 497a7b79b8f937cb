"""CoProp pipeline: control points -> keyframes -> propagation, streaming, plug-in keyframe models, datasets."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from coprop.data.clip import Clip, avsbench_frame_times
from coprop.errors import DataError
from coprop.models.common import prepare_frames
from coprop.models.config import get_config
from coprop.models.propagator import AudioInsertPropagator
from coprop.pipeline import CoProp, PipelineConfig, Prediction, segments

S = 64          # model input size
H, W = 48, 80   # clip size: outputs must come back at this size




@pytest.fixture(scope="module")
def propagator():
    torch.manual_seed(0)
    return AudioInsertPropagator(get_config("tiny", image_size=S)).eval()


def make_clip(T: int = 6, classes: tuple[int, ...] = (1,), name: str = "clip") -> Clip:
    """Frames with a bright square per class moving right; masks hold the class ids (0 = background)."""
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 60, size=(T, H, W, 3))).astype(np.uint8)
    masks = np.zeros((T, H, W), dtype=np.int64)
    for t in range(T):
        for i, c in enumerate(classes):
            y, x = 6 + 20 * i, 4 + 3 * t + 30 * i
            frames[t, y:y + 14, x:x + 14] = (200, 40 * c % 255, 255 - 30 * c)
            masks[t, y:y + 14, x:x + 14] = c
    logmel = rng.normal(-2, 1, size=(T, 1, 96, 64)).astype(np.float32)
    return Clip(frames=frames, waveform=np.zeros(16000 * T, np.float32), frame_times=avsbench_frame_times(T),
                masks=masks, meta={"name": name, "mode": "binary" if classes == (1,) else "semantic"},
                logmel=logmel)


class GTKeyframeModel(nn.Module):
    """Image-level plug-in: returns logits of the clip's GT mask for the frame it is shown, and records which
    frame that was (found by comparing the prepared image with every prepared frame of the clip)."""

    def __init__(self, clip: Clip, num_classes: int):
        super().__init__()
        self.cfg = SimpleNamespace(image_size=S, num_classes=num_classes)
        self.prepared = prepare_frames(clip.frames, S)
        target = torch.nn.functional.interpolate(torch.as_tensor(clip.masks)[:, None].float(), size=(S, S),
                                                 mode="nearest")[:, 0].long()
        if num_classes == 1:
            self.logits = (target[:, None].float() * 2 - 1) * 8.0
        else:
            self.logits = torch.nn.functional.one_hot(target, num_classes).permute(0, 3, 1, 2).float() * 8.0
        self.calls: list[int] = []
        self.labels: list[int] = []

    def forward(self, image, audio=None, text_labels=None):
        t = int(((self.prepared - image).flatten(1).abs().amax(1)).argmin())
        assert torch.allclose(self.prepared[t], image[0], atol=1e-5)
        self.calls.append(t)
        if text_labels is not None:
            self.labels.append(int(text_labels[0]))
        return self.logits[t:t + 1]


class ClipLevelModel(nn.Module):
    """Clip-level plug-in (SimultaneousBaseline's signature): records the length of every clip it is given."""

    def __init__(self, num_classes: int = 1):
        super().__init__()
        self.cfg = SimpleNamespace(image_size=S, num_classes=num_classes)
        self.lengths: list[int] = []

    def forward(self, frames, audio=None, text_labels=None):
        self.lengths.append(frames.shape[1])
        B, T = frames.shape[:2]
        return frames.mean(2, keepdim=True) * 5.0  # [B,T,1,S,S]: bright pixels are the object


def test_segments_split_at_control_points():
    assert segments([1, 0, 0, 1, 0]) == [(0, 3), (3, 5)]
    assert segments([1]) == [(0, 1)]
    assert segments([1, 1, 1]) == [(0, 1), (1, 2), (2, 3)]


def test_keyframe_model_runs_exactly_at_control_points(propagator):
    clip = make_clip(T=6)
    kf = GTKeyframeModel(clip, 1)
    pipe = CoProp(kf, propagator)
    pred = pipe.predict(clip, control_points=[1, 0, 0, 1, 0, 0])
    assert isinstance(pred, Prediction)
    assert kf.calls == [0, 3]
    assert pred.keyframes == [0, 3] and pred.control_points == [1, 0, 0, 1, 0, 0]
    assert pred.logits.shape == (6, 1, H, W) and pred.logits.dtype == torch.float32
    # keyframes carry the keyframe model's own logits; the other frames come from the propagator
    key = torch.nn.functional.interpolate(kf.logits[[0, 3]], size=(H, W), mode="bilinear", align_corners=False)
    assert torch.allclose(pred.logits[[0, 3]], key)
    assert not torch.allclose(pred.logits[1], torch.nn.functional.interpolate(
        kf.logits[1:2], size=(H, W), mode="bilinear", align_corners=False)[0])
    assert {"control_points", "audio", "prepare", "keyframe", "propagation", "total"} <= set(pred.timings_ms)
    assert all(v >= 0 for v in pred.timings_ms.values()) and pred.state_bytes > 0
    assert pred.masks().shape == (6, H, W)


def test_control_points_come_from_the_source_and_are_validated(propagator):
    clip = make_clip(T=5)
    kf = GTKeyframeModel(clip, 1)
    pipe = CoProp(kf, propagator, source=lambda c: [1, 0, 1, 0, 0])
    assert pipe.predict(clip).keyframes == [0, 2]
    assert kf.calls == [0, 2]
    assert CoProp(kf, propagator).predict(clip).keyframes == [0]     # no source: frame 0 only
    for bad in ([1, 0, 1], [0, 0, 1, 0, 0], [1, 2, 0, 0, 0]):
        with pytest.raises(DataError):
            CoProp(kf, propagator, source=lambda c, b=bad: b).predict(clip)


def test_stream_matches_predict_and_keeps_memory_bounded(propagator):
    clip = make_clip(T=6)
    kf = GTKeyframeModel(clip, 1)
    pipe = CoProp(kf, propagator)
    cps = [1, 0, 0, 0, 1, 0]
    offline = pipe.predict(clip, control_points=cps)
    stream = pipe.stream(cps)
    online = torch.stack([stream.push(clip.frames[t], clip.logmel[t]) for t in range(6)])
    assert torch.allclose(online, offline.logits, atol=1e-5)
    assert stream.keyframes == [0, 4]
    # a callable source and a long video: the state never grows past its warm-up size
    long_stream = pipe.stream(lambda t, frame, logmel: t % 50 == 0)
    sizes = []
    for t in range(60):
        long_stream.push(clip.frames[t % 6], clip.logmel[t % 6])
        sizes.append(long_stream.state.nbytes())
    assert long_stream.keyframes == [0, 50]
    assert len(set(sizes[30:])) == 1 and max(sizes) == sizes[-1]
    assert len(long_stream.state.store) <= propagator.cfg.memory_capacity + 1
    # explicit flag overrides the source
    s2 = pipe.stream([1, 0, 0])
    s2.push(clip.frames[0], clip.logmel[0])
    s2.push(clip.frames[1], clip.logmel[1], is_control_point=True)
    assert s2.keyframes == [0, 1]
    with pytest.raises(DataError):
        s2.push(clip.frames[2][..., :2], clip.logmel[2])


def test_semantic_clip_gives_one_identity_per_class(propagator):
    K = 6
    clip = make_clip(T=4, classes=(2, 5))
    kf = GTKeyframeModel(clip, K)
    seen = {}
    real_start = propagator.start

    def start(*args, **kw):
        state = real_start(*args, **kw)
        seen["num_objects"] = state.num_objects
        return state

    propagator.start = start
    try:
        pipe = CoProp(kf, propagator)
        stream = pipe.stream([1, 0, 0, 0])
        outs = [stream.push(clip.frames[t], clip.logmel[t]) for t in range(4)]
    finally:
        del propagator.start
    assert seen["num_objects"] == 2 and stream.classes == [2, 5]
    assert all(o.shape == (K, H, W) for o in outs)
    assert set(outs[0].argmax(0).unique().tolist()) == {0, 2, 5}
    for o in outs[1:]:
        assert set(o.argmax(0).unique().tolist()) <= {0, 2, 5}
        # absent classes sit below every present channel at every pixel
        present = o[[0, 2, 5]].amin(0)
        assert (o[[1, 3, 4]] < present[None]).all()
    # the scatter: propagated class channels are exactly the propagator's identity channels
    with torch.inference_mode():
        object_of_class = torch.tensor([0, 0, 1, 0, 0, 2])
        state = propagator.start(prepare_frames(clip.frames[:1], S), torch.as_tensor(clip.logmel[:1]),
                                 object_of_class[kf.logits[:1].argmax(1)], 2)
        obj, _ = propagator.step(prepare_frames(clip.frames[1:2], S), torch.as_tensor(clip.logmel[1:2]), state)
    mapped = stream._to_classes(obj[0])
    assert torch.equal(mapped[[0, 2, 5]], obj[0])


def test_clip_level_keyframe_model_plugs_in(propagator):
    clip = make_clip(T=6)
    model = ClipLevelModel()
    pred = CoProp(model, propagator).predict(clip, control_points=[1, 0, 1, 0, 0, 0])
    assert model.lengths == [2, 4] and pred.keyframes == [0, 2]       # one call per segment
    model.lengths.clear()
    pipe = CoProp(model, propagator, cfg=PipelineConfig(keyframe_context="clip"))
    pipe.predict(clip, control_points=[1, 0, 1, 0, 0, 0])
    assert model.lengths == [6]                                        # one call over the whole clip
    model.lengths.clear()
    stream = CoProp(model, propagator).stream([1, 0, 1])
    for t in range(3):
        stream.push(clip.frames[t], clip.logmel[t])
    assert model.lengths == [1, 1]                                     # streaming: the keyframe alone


def test_real_keyframe_processor_and_baseline_end_to_end(propagator):
    from coprop.models.keyframe import KeyframeProcessor
    from coprop.models.simultaneous import SimultaneousBaseline

    cfg = get_config("tiny", image_size=S)
    clip = make_clip(T=4)
    for model, level in ((KeyframeProcessor(cfg, allow_random=True), "image"),
                         (SimultaneousBaseline(cfg, allow_random=True), "clip")):
        pipe = CoProp(model.eval(), propagator, cfg=cfg)
        assert pipe.keyframe.level == level
        pred = pipe.predict(clip, control_points=[1, 0, 1, 0])
        assert pred.logits.shape == (4, 1, H, W) and torch.isfinite(pred.logits).all()


def test_text_guided_pipeline_labels_each_segment():
    torch.manual_seed(0)
    prop = AudioInsertPropagator(get_config("tiny", image_size=S, guidance="text", num_text_labels=4)).eval()
    clip = make_clip(T=5)
    kf = GTKeyframeModel(clip, 1)
    labels = {0: 3, 2: 1}
    pipe = CoProp(kf, prop, labeler=lambda c, s, e: labels[s])
    pred = pipe.predict(clip, control_points=[1, 0, 1, 0, 0])
    assert kf.labels == [3, 1] and pred.keyframes == [0, 2]


def test_predict_dataset_reports_bad_clips_and_keeps_going(propagator):
    clips = [make_clip(T=3, name=f"c{i}") for i in range(3)]

    class Dataset:
        names = ["c0", "c1", "c2"]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            if i == 1:
                raise DataError(f"/data/{self.names[i]}.mp4", "cannot decode video", "re-encode it")
            return clips[i]

    kf = GTKeyframeModel(clips[0], 1)
    seen = []
    out = CoProp(kf, propagator).predict_dataset(Dataset(), on_prediction=lambda c, p: seen.append(c.name))
    assert sorted(out.predictions) == ["c0", "c2"] and seen == ["c0", "c2"]
    assert out.bad_clips[0][0] == "c1" and "cannot decode video" in out.bad_clips[0][1]


def test_synthetic_benchmark_with_gt_control_points(synth_root):
    """Real readers (audio from the waveform), the GT control-point source, an Evaluator-ready output."""
    from coprop.controlpoints.detectors import get_source
    from coprop.data import open_dataset
    from coprop.metrics import binary_jaccard

    torch.manual_seed(0)
    for subset in ("ms3", "avss"):
        ds = open_dataset(synth_root, subset, "test")
        K = 1 if ds.mode == "binary" else len(ds.class_names)
        prop = AudioInsertPropagator(get_config("tiny", image_size=S, num_classes=K)).eval()
        source = get_source("gt")
        for i in range(len(ds)):
            clip = ds[i]
            kf = GTKeyframeModel(clip, K)
            pred = CoProp(kf, prop, source=source).predict(clip)
            cps = source(clip)
            assert pred.control_points == cps and kf.calls == [t for t, c in enumerate(cps) if c]
            assert pred.logits.shape == (clip.num_frames, K, *clip.size)
            keys = torch.tensor(pred.keyframes)
            gt = torch.as_tensor(clip.masks)
            if K == 1:   # keyframes reproduce the keyframe model's (here: GT) mask
                assert (binary_jaccard(pred.logits[keys, 0], gt[keys]) > 0.95).all()
            else:
                assert (pred.masks()[keys] == gt[keys]).float().mean() > 0.95
