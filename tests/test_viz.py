"""coprop.viz and coprop.widgets on a hand-made clip: overlays land on the right pixels, figures render."""
from __future__ import annotations

import io
import wave

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from coprop import viz, widgets  # noqa: E402
from coprop.data.clip import Clip, avsbench_frame_times  # noqa: E402


@pytest.fixture
def clip():
    T, H, W = 5, 32, 40
    frames = np.full((T, H, W, 3), 100, np.uint8)
    masks = np.zeros((T, H, W), np.int64)
    masks[:, 8:16, 10:20] = 1
    wav = (0.3 * np.sin(np.linspace(0, 2000, 16000 * T))).astype(np.float32)
    gt_av = np.array([True, True, False, True, True])
    return Clip(frames, wav, avsbench_frame_times(T), masks, gt_av, {"name": "toy", "mode": "binary"})


def test_overlay_colours_only_mask_pixels():
    frame = np.zeros((10, 10, 3), np.uint8)
    mask = np.zeros((10, 10), np.int64)
    mask[2:6, 2:6] = 3
    out = viz.overlay(frame, mask, alpha=0.5, outline=False)
    assert (out[0, 0] == 0).all()
    assert np.allclose(out[3, 3], 0.5 * viz.class_color(3), atol=1)
    small = np.zeros((5, 5), np.int64)
    small[0, 0] = 1
    assert (viz.overlay(frame, small, outline=False)[:2, :2].sum(-1) > 0).all()   # nearest-neighbour upsampling


def test_logits_to_masks_binary_and_semantic():
    binary = np.full((2, 1, 4, 4), -1.0)
    binary[0, 0, 1, 1] = 2.0
    assert viz.logits_to_masks(binary)[0, 1, 1] == 1 and viz.logits_to_masks(binary).sum() == 1
    sem = np.zeros((1, 3, 2, 2))
    sem[0, 2, 0, 0] = 5
    assert viz.logits_to_masks(sem)[0, 0, 0] == 2


def test_segment_lengths():
    assert viz.segment_lengths([1, 0, 0, 1, 0]) == [3, 2]
    assert viz.segment_lengths([1, 1, 1]) == [1, 1, 1]


def test_figures_render(clip):
    pred = clip.masks.copy()
    pred[3:] = 0
    figs = [
        viz.mask_grid(clip.frames, {"frame": None, "GT": clip.masks, "pred": pred}),
        viz.audio_panels(clip.waveform, np.random.rand(5, 1, 96, 64), clip.frame_times,
                         control_points=[1, 0, 0, 1, 0], sounding=[["a"], ["a"], ["a"], ["b"], []]),
        viz.control_point_timeline({"GT": [1, 0, 0, 1, 0], "cosine": [1, 1, 0, 0, 0]}),
        viz.segment_length_hist({"GT": [[1, 0, 0, 1, 0], [1, 0, 0, 0, 0]]}),
        viz.j_per_frame({"a": [1, 0.5, np.nan, 0.2, 0.1]}, [1, 0, 0, 1, 0]),
        viz.alignment_timeline({"m": ["a", "a", "a", "a", "b"]}, ["a", "a", "a", "b", "b"], control_points=[1, 0, 0, 1, 0]),
        viz.grouped_bars(pd.DataFrame({"x": ["s", "s"], "h": ["p", "q"], "y": [1, 2], "e": [0.1, 0.2]}),
                         "x", "y", "h", yerr="e", highlight="q"),
    ]
    for f in figs:
        buf = io.BytesIO()
        f.savefig(buf, format="png")
        assert buf.tell() > 1000
        plt.close(f)


def test_alignment_timeline_marks_mismatches():
    fig = viz.alignment_timeline({"m": ["a", "b"]}, ["a", "a"])
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in fig.axes[0].patches]
    assert colours[-2:] == [viz.OK_COLOR, viz.MISS_COLOR]   # method row: match, then mismatch
    plt.close(fig)


def test_viewer_static_and_widget(clip):
    logits = np.where(clip.masks[:, None] > 0, 3.0, -3.0)
    v = widgets.Viewer(clip, {"Co-Prop": logits}, control_points=[1, 0, 0, 1, 0],
                       per_frame_j={"Co-Prop": [1, 1, np.nan, 1, 1]})
    assert list(v.rows()) == ["frame", "GT", "Co-Prop"]
    assert v.rows()["GT"][2].sum() == 0            # no GT on frame 2: nothing drawn
    fig = v.static()
    assert len(fig.axes) == 3 * 5 + 2
    plt.close(fig)
    w = v.widget()
    slider = w.children[1]
    first = w.children[2].children[2].children[1].value
    slider.value = 3
    assert w.children[2].children[2].children[1].value != b"" and first
    with pytest.raises(ValueError, match="frames"):
        widgets.Viewer(clip, {"bad": logits[:3]})


def test_wav_bytes_roundtrip():
    data = widgets.wav_bytes(np.array([0.0, 0.5, -0.5], np.float32), sr=8000)
    with wave.open(io.BytesIO(data)) as f:
        assert f.getframerate() == 8000 and f.getnframes() == 3
        samples = np.frombuffer(f.readframes(3), "<i2")
    assert list(samples) == [0, 16383, -16383]


def test_viewer_pieces_speak_percent_and_the_empty_gt_rule(clip):
    clip.masks[4] = 0                               # frame 4: annotated, nothing sounds
    v = widgets.Viewer(clip, {"Co-Prop": clip.masks}, control_points={"GT": [1, 0, 0, 1, 0]},
                       per_frame_j={"Co-Prop": [1.0, 0.5, np.nan, 0.25, 1.0]})
    assert [v.gt_state(t) for t in range(5)] == ["mask", "mask", "none", "mask", "empty"]
    j1 = v.j_html(1)
    assert "50.0" in j1 and "J, frame 1 (%)" in j1 and "68.8" in j1 and "AVSBench" not in j1   # mean of 4 frames
    assert "AVSBench&#x27;s rule" in v.j_html(4) and "no GT annotation" in v.j_html(2) and "—" in v.j_html(2)
    tl = v.timeline_html(3)
    assert tl.count("border-left:3px solid #000") == 2 and tl.count("box-shadow") == 3   # 2 control points
    assert "∅" in tl and "control points: GT" in tl
    assert "mask, with its outline" in v.legend_html()
    with wave.open(io.BytesIO(v.audio_from(2))) as f:   # frame 2 sits at 2 + 15/16 s: audio from 2.0 s
        assert f.getnframes() == len(clip.waveform) - 2 * 16000
    w = v.widget()
    slider, audio = w.children[1], w.children[-1].children[0]
    before = audio.value
    slider.value = 3
    assert len(audio.value) < len(before) and "frame 3" in w.children[-1].children[1].value
