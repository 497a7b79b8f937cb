"""Binary masks saved as 16-bit PNGs (0 / 65535) read as binary everywhere; other values name the file and mode."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from avsbench_tree import H, W, box_mask, build_tree, write_png
from PIL import Image

from coprop.data import open_dataset
from coprop.data.check import check_dataset
from coprop.data.images import read_binary_mask
from coprop.errors import DataError
from coprop.evaluate import evaluate

MASK = "Single-source/s4_data/gt_masks/test/cat/s4clipB/s4clipB_{k}.png"


def write16(path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I"), "the test needs a real 16-bit PNG"


@pytest.fixture(scope="module")
def tree16(tmp_path_factory):
    root = tmp_path_factory.mktemp("m16")
    build_tree(root)
    for k in range(1, 6):   # the S4 test clip's GT, re-saved as 16-bit 0/65535
        write16(root / MASK.format(k=k), box_mask(k - 1) * 65535)
    return root


def test_reader_takes_16bit_zero_and_max_as_binary(tree16):
    m = read_binary_mask(tree16 / MASK.format(k=1))
    assert m.dtype == np.int64 and np.array_equal(m, box_mask(0))
    clip = open_dataset(tree16, "s4", "test")[0]
    assert np.array_equal(clip.masks, np.stack([box_mask(t) for t in range(5)]))


def test_check_data_accepts_16bit_binary_masks(tree16):
    assert check_dataset(tree16, ["s4"], show_progress=False) == []


@pytest.mark.parametrize("values,bits,mode", [((0, 300, 65535), 16, "I;16"), ((0, 128, 255), 8, "L")])
def test_other_values_name_file_mode_and_maximum(tree16, tmp_path, values, bits, mode):
    root = tmp_path / "t"
    shutil.copytree(tree16, root)
    arr = np.zeros((H, W), np.int64)
    arr[:4], arr[4:8] = values[1], values[2]
    path = root / MASK.format(k=2)
    if bits == 16:
        write16(path, arr)
    else:
        write_png(path, arr.astype(np.uint8))
    with pytest.raises(DataError) as e:
        read_binary_mask(path)
    msg = str(e.value)
    assert str(path) in msg and f"mode {mode}" in msg and f"{bits}-bit" in msg and f"other than 0 and {values[2]}" in msg
    assert "maximum of its bit depth" in e.value.hint
    probs = check_dataset(root, ["s4"], ["test"], show_progress=False)
    assert len(probs) == 1 and probs[0].path == str(path) and f"mode {mode}" in probs[0].problem
    lenient = read_binary_mask(path, strict=False)   # threshold at half the bit depth's maximum
    assert lenient[:4].max() == int(values[1] >= (values[2] + 1) // 2) and lenient[4:8].min() == 1


def test_evaluate_reads_16bit_binary_predictions(tree16, tmp_path):
    pred = tmp_path / "pred"
    for k in range(1, 6):
        write16(pred / f"cat/s4clipB/s4clipB_{k}.png", box_mask(k - 1) * 65535)
    s = evaluate(pred, tree16, "s4", "test", show_progress=False)
    assert s["predictions"]["formats"] == {"binary16": 5}
    assert (s["J"], s["F"]) == (pytest.approx(1.0), pytest.approx(1.0))


def test_16bit_probability_map_scores_like_its_8bit_twin(tree16, tmp_path):
    """v16 = 257 * v8 is the same probability (v8 / 255 == v16 / 65535): J and F must be identical."""
    rng = np.random.default_rng(1)
    scores = []
    v8 = [rng.integers(0, 256, (H, W)) for _ in range(5)]
    for bits in (8, 16):
        pred = tmp_path / f"p{bits}"
        for k in range(1, 6):
            path = pred / f"cat/s4clipB/s4clipB_{k}.png"
            if bits == 16:
                write16(path, v8[k - 1] * 257)
            else:
                write_png(path, v8[k - 1].astype(np.uint8))
        s = evaluate(pred, tree16, "s4", "test", show_progress=False)
        assert s["predictions"]["formats"] == {f"prob{bits}": 5}
        scores.append({n: (p["J"], p["F"]) for n, p in s["protocols"].items()})
    assert scores[0] == scores[1]
