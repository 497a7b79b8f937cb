"""Every kind of malformed input gives a DataError that names the offending file (issue 6)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from avsbench_tree import W, H, box_mask, build_tree, palette_rgb, tone, write_csv, write_png, write_wav

from coprop.data import open_dataset
from coprop.data.media import read_video, write_video
from coprop.errors import DataError

S4 = "Single-source/s4_data"
AVSS = "AVSS"


def _s4(root, split="test"):
    return open_dataset(root, "s4", split)[0]


def _avss(root, split="test"):
    return open_dataset(root, "avss", split)[0]


def corrupt_wav(root):
    (root / S4 / "audio_wav/test/cat/s4clipB.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    return lambda: _s4(root), "s4clipB.wav"


def truncated_png(root):
    p = root / S4 / "visual_frames/test/cat/s4clipB/s4clipB_3.png"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return lambda: _s4(root), "s4clipB_3.png"


def wrong_mask_size(root):
    write_png(root / S4 / "gt_masks/test/cat/s4clipB/s4clipB_2.png", np.zeros((16, 16), np.uint8))
    return lambda: _s4(root), "s4clipB_2.png"


def unknown_palette_colour(root):
    rgb = palette_rgb(box_mask(0, value=2))
    rgb[5, 5] = (7, 7, 7)
    write_png(root / AVSS / "v2/uid_v2/labels_rgb/4.png", rgb)
    return lambda: _avss(root), "4.png"


def nan_audio(root):
    x = tone(5.0, 440)
    x[100] = np.nan
    write_wav(root / S4 / "audio_wav/test/cat/s4clipB.wav", x, subtype="FLOAT")
    return lambda: _s4(root), "s4clipB.wav"


def empty_video(root):
    (root / "empty.mp4").write_bytes(b"")
    return lambda: read_video(root / "empty.mp4"), "empty.mp4"


def video_without_audio(root):
    write_video(root / "silent_film.mp4", np.zeros((4, 16, 16, 3), np.uint8), 1.0)
    return lambda: read_video(root / "silent_film.mp4"), "silent_film.mp4"


def wrong_sample_rate(root):
    write_wav(root / S4 / "audio_wav/test/cat/s4clipB.wav", tone(5.0, 440, sr=22050), sr=22050)
    return lambda: _s4(root), "s4clipB.wav"


def too_short_audio(root):
    write_wav(root / AVSS / "v2/uid_v2/audio.wav", tone(0.5, 440))
    return lambda: _avss(root), "audio.wav"


def mismatched_frame_and_mask_counts(root):
    for k in range(5, 10):
        (root / AVSS / f"v2/uid_v2/labels_rgb/{k}.png").unlink()
    return lambda: _avss(root), "uid_v2"


def extra_mask_without_frame(root):
    write_png(root / "Multi-sources/ms3_data/gt_masks/val/ms3vidB/ms3vidB_6.png", np.zeros((H, W), np.uint8))
    return lambda: open_dataset(root, "ms3", "val")[0], "ms3vidB"


def missing_frame_file(root):
    (root / S4 / "visual_frames/test/cat/s4clipB/s4clipB_4.png").unlink()
    return lambda: _s4(root), "s4clipB_4.png"


def missing_clip_folder(root):
    shutil.rmtree(root / AVSS / "v2/uid_v2")
    return lambda: _avss(root), "uid_v2"


def missing_meta_csv(root):
    (root / "Single-source/s4_meta_data.csv").unlink()
    return lambda: _s4(root), "s4_meta_data.csv"


def csv_missing_column(root):
    write_csv(root / "Single-source/s4_meta_data.csv", ["name", "start", "split"], [["s4clipB", 0, "test"]])
    return lambda: _s4(root), "s4_meta_data.csv"


def bad_label2idx(root):
    (root / AVSS / "label2idx.json").write_text('{"background": 1, "dog": 1}')
    return lambda: _avss(root), "label2idx.json"


def unparsable_label2idx(root):
    (root / AVSS / "label2idx.json").write_text("{background: 1,")
    return lambda: _avss(root), "label2idx.json"


def non_binary_mask(root):
    write_png(root / S4 / "gt_masks/test/cat/s4clipB/s4clipB_5.png", (box_mask(0) * 128).astype(np.uint8))
    return lambda: _s4(root), "s4clipB_5.png"


def zero_byte_jpg(root):
    (root / AVSS / "v2/uid_v2/frames/7.jpg").write_bytes(b"")
    return lambda: _avss(root), "7.jpg"


def unknown_split(root):
    return lambda: open_dataset(root, "s4", "training"), "s4_meta_data.csv"


def unknown_subset(root):
    return lambda: open_dataset(root / "Single-source", "s5", "train"), "Single-source"


def semantic_id_out_of_range(root):
    write_png(root / AVSS / "v1m/uid_m/labels_semantic/1.png", np.full((H, W), 40, np.uint8))
    return lambda: open_dataset(root, "avss", "val")[0], "1.png"


def corrupt_pkl_without_wav(root):
    (root / S4 / "audio_wav/train/dog/s4clipA.wav").unlink()
    (root / S4 / "audio_log_mel/train/dog/s4clipA.pkl").write_bytes(b"\x80\x04garbage")
    return lambda: _s4(root, "train"), "s4clipA.pkl"


def frames_of_different_sizes(root):
    write_png(root / "Multi-sources/ms3_data/visual_frames/ms3vidA/ms3vidA.mp4_3.png", np.zeros((H, W + 2, 3), np.uint8))
    return lambda: open_dataset(root, "ms3", "train")[0], "ms3vidA.mp4_3.png"


def corrupt_video(root):
    (root / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    return lambda: read_video(root / "noise.mp4"), "noise.mp4"


CASES = [corrupt_wav, truncated_png, wrong_mask_size, unknown_palette_colour, nan_audio, empty_video,
         video_without_audio, wrong_sample_rate, too_short_audio, mismatched_frame_and_mask_counts,
         extra_mask_without_frame, missing_frame_file, missing_clip_folder, missing_meta_csv, csv_missing_column,
         bad_label2idx, unparsable_label2idx, non_binary_mask, zero_byte_jpg, unknown_split, unknown_subset,
         semantic_id_out_of_range, corrupt_pkl_without_wav, frames_of_different_sizes, corrupt_video]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    build_tree(root)
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_names_the_file(case, pristine, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(pristine, root)
    trigger, filename = case(root)
    with pytest.raises(DataError) as e:
        trigger()
    err = e.value
    assert filename in str(err), str(err)
    assert err.path is not None and filename in str(err.path)
    assert err.hint, f"no hint for {case.__name__}"
    assert "Traceback" not in str(err)


def test_the_clean_tree_reads(pristine):
    for subset in ("s4", "ms3", "avss"):
        for clip in open_dataset(pristine, subset, None):
            assert clip.num_frames in (5, 10)
    assert json.loads((pristine / AVSS / "label2idx.json").read_text())["background"] == 1
