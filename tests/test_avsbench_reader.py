"""The AVSBench readers on a tree written by hand (tests/avsbench_tree.py), field by field."""
from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
from PIL import Image
from avsbench_tree import AVSS_CLASSES, build_tree, box_mask, frame_image, palette_rgb, write_png

from coprop.data import open_dataset
from coprop.data.audio import clip_logmel, logmel_examples
from coprop.data.images import voc_palette
from coprop.errors import DataError


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("avsbench")
    return root, build_tree(root)


LSB = 1 / 32768 + 1e-7   # PCM_16 quantisation: what was written comes back within one step


def _wav16(x):
    """The written signal, mono by channel mean (as read back within one int16 step)."""
    x = np.asarray(x)
    return x.mean(1) if x.ndim == 2 else x


def test_s4_every_field(tree):
    root, exp = tree
    ds = open_dataset(root, "s4", None)
    assert ds.subset == "s4" and ds.split is None and ds.mode == "binary"
    assert ds.class_names == ["background", "object"] and ds.names == ["s4clipA", "s4clipB"] and len(ds) == 2
    for i, name in enumerate(ds.names):
        e = exp["s4"][name]
        assert ds.category(i) == e["category"]
        clip = ds[i]
        assert clip.frames.shape == (5, 24, 32, 3) and clip.frames.dtype == np.uint8
        for t in range(5):
            np.testing.assert_array_equal(clip.frames[t], frame_image(e["seed"], t))
        assert clip.masks.dtype == np.int64 and clip.masks.shape == (5, 24, 32)
        np.testing.assert_array_equal(clip.gt_available, np.arange(5) < e["n_gt"])
        for t in range(5):
            np.testing.assert_array_equal(clip.masks[t], box_mask(t) if t < e["n_gt"] else 0)
        np.testing.assert_allclose(clip.frame_times, np.arange(5) + 15 / 16)
        assert clip.waveform.dtype == np.float32
        np.testing.assert_allclose(clip.waveform, _wav16(e["wav"]), atol=LSB)
        m = clip.meta
        assert (m["name"], m["subset"], m["split"], m["category"], m["mode"]) == \
            (name, "s4", e["split"], e["category"], "binary")
        assert m["source"].endswith(f"visual_frames/{e['split']}/{e['category']}/{name}")
        assert "synthetic" not in m
    a = ds[0]
    np.testing.assert_array_equal(a.logmel, exp["s4"]["s4clipA"]["pkl"])          # official pkl loaded
    np.testing.assert_array_equal(clip_logmel(a), exp["s4"]["s4clipA"]["pkl"])
    assert ds[1].logmel is None
    np.testing.assert_allclose(clip_logmel(ds[1])[:, 0], logmel_examples(ds[1].waveform), atol=1e-6)
    assert open_dataset(root, "s4", "train", use_pkl=False)[0].logmel is None


def test_ms3_every_field(tree):
    root, exp = tree
    ds = open_dataset(root / "Multi-sources", "ms3", "val")      # the subset folder itself works too
    assert ds.names == ["ms3vidB"] and ds.mode == "binary" and ds.category(0) == ""
    clip = ds[0]
    e = exp["ms3"]["ms3vidB"]
    for t in range(5):
        np.testing.assert_array_equal(clip.frames[t], frame_image(e["seed"], t))
        np.testing.assert_array_equal(clip.masks[t], 0 if t == 2 else box_mask(t))
    assert clip.gt_available.all()                               # 5 masks in every MS3 split, empty ones too
    np.testing.assert_allclose(clip.waveform, _wav16(e["wav"]), atol=LSB)
    assert clip.meta["split"] == "val" and clip.meta["source"].endswith("visual_frames/ms3vidB")
    train = open_dataset(root, "ms3", "train")
    assert train.names == ["ms3vidA"] and train[0].gt_available.all()


def test_avss_every_field(tree):
    root, exp = tree
    ds = open_dataset(root, "avss", None)
    assert ds.mode == "semantic" and ds.class_names == AVSS_CLASSES and ds.num_classes == 5
    assert ds.names == ["uid_s", "uid_m", "uid_v2"]
    for i, uid in enumerate(ds.names):
        e = exp["avss"][uid]
        assert ds.category(i) == e["a_obj"]
        clip = ds[i]
        T = e["T"]
        assert clip.frames.shape == (T, 24, 32, 3)
        for t in range(T):                                       # JPEG: exact to PIL's decode, close to the source
            jpg = root / f"AVSS/{e['label']}/{uid}/frames/{t}.jpg"
            np.testing.assert_array_equal(clip.frames[t], np.asarray(Image.open(jpg).convert("RGB")))
            assert np.median(np.abs(clip.frames[t].astype(int) - frame_image(e["seed"], t))) <= 4
        np.testing.assert_array_equal(clip.gt_available, np.arange(T) < e["n_gt"])
        for t in range(T):
            np.testing.assert_array_equal(clip.masks[t], e["labels"][t] if t < e["n_gt"] else 0)
        np.testing.assert_allclose(clip.frame_times, np.arange(T) + 15 / 16)
        np.testing.assert_allclose(clip.waveform, _wav16(e["wav"]), atol=LSB)
        m = clip.meta
        assert (m["name"], m["subset"], m["split"], m["label"], m["uid"], m["vid"], m["mode"]) == \
            (uid, "avss", e["split"], e["label"], uid, e["vid"], "semantic")
        assert clip_logmel(clip).shape == (T, 1, 96, 64)
    assert open_dataset(root, "avss", None, labels=["v2"]).names == ["uid_v2"]
    assert open_dataset(root, "avss", "val").names == ["uid_m"]


def test_palette_is_voc():
    pal = voc_palette(71)
    assert pal[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    ids = np.arange(71).reshape(1, 71)
    np.testing.assert_array_equal(palette_rgb(ids)[0], pal)
    assert len({tuple(c) for c in pal}) == 71


def test_unknown_palette_colour_strict_and_official_fallback(tmp_path):
    exp = build_tree(tmp_path)
    lab = exp["avss"]["uid_v2"]["labels"][3]
    rgb = palette_rgb(lab)
    rgb[0, 0] = (1, 2, 3)
    write_png(tmp_path / "AVSS/v2/uid_v2/labels_rgb/3.png", rgb)
    with pytest.raises(DataError, match=r"3\.png.*outside the 5-class") as e:
        open_dataset(tmp_path, "avss", "test")[0]
    assert "strict=False" in e.value.hint
    clip = open_dataset(tmp_path, "avss", "test", strict=False)[0]
    want = lab.copy()
    want[0, 0] = 0
    np.testing.assert_array_equal(clip.masks[3], want)


def test_sequence_behaviour_and_synthetic_meta(tmp_path):
    build_tree(tmp_path)
    sounding = [["dog"], ["dog"], [], ["cat"], ["cat"]]
    (tmp_path / "Single-source/synthetic_meta.json").write_text(
        json.dumps({"s4clipB": {"sounding": sounding, "conversions": [3]}}))
    ds = open_dataset(tmp_path, "s4", None)
    assert [c.name for c in ds] == ds.names
    assert ds[-1].name == "s4clipB" and [c.name for c in ds[0:2]] == ds.names
    with pytest.raises(IndexError):
        ds[2]
    b = ds[1]
    assert b.meta["synthetic"] is True and b.meta["sounding"] == sounding and b.meta["conversions"] == [3]
    assert "synthetic" not in ds[0].meta


def test_lazy_open_of_a_large_meta_csv(tmp_path):
    """Opening reads only the CSV: 5000 rows without any clip folder open fast; decoding one then fails clearly."""
    root = tmp_path / "Single-source"
    root.mkdir()
    with open(root / "s4_meta_data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "start", "category", "split"])
        for i in range(5000):
            w.writerow([f"vid{i:05d}", i % 7, f"cat{i % 23}", ("train", "val", "test")[i % 3]])
    t = time.perf_counter()
    ds = open_dataset(tmp_path, "s4", "train")
    elapsed = time.perf_counter() - t
    assert len(ds) == 1667 and ds.category(1) == "cat3" and elapsed < 1.0
    with pytest.raises(DataError, match="vid00000.*frame folder of this meta CSV row is missing"):
        ds[0]
