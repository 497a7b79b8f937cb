"""check-data lists every problem of a damaged tree (not just the first) and exits 0 only when clean."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from avsbench_tree import box_mask, build_tree, palette_rgb, tone, write_csv, write_png, write_wav

from coprop.cli import main as coprop_main
from coprop.data.check import Problem, check_dataset, cli

S4 = "Single-source/s4_data"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    build_tree(root)
    return root


def test_clean_tree_has_no_problems(pristine, capsys):
    assert check_dataset(pristine, show_progress=False) == []
    assert cli([str(pristine), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "no problems" in out and "7 clip(s) of s4, ms3, avss" in out
    assert cli([str(pristine / "Multi-sources"), "--subset", "ms3", "--split", "val", "--no-progress"]) == 0
    assert "1 clip(s) of ms3" in capsys.readouterr().out


def _damage(root):
    """Several defects, two of them in the same clip; returns (path suffix, words of the problem) per defect."""
    x = tone(5.0, 440)
    x[10] = np.nan
    write_wav(root / S4 / "audio_wav/test/cat/s4clipB.wav", x, subtype="FLOAT")
    (root / S4 / "visual_frames/test/cat/s4clipB/s4clipB_2.png").unlink()
    write_png(root / S4 / "gt_masks/test/cat/s4clipB/s4clipB_4.png", np.zeros((10, 10), np.uint8))
    write_wav(root / S4 / "audio_wav/train/dog/s4clipA.wav", tone(5.0, 440, sr=44100), sr=44100)
    p = root / "Multi-sources/ms3_data/visual_frames/ms3vidA/ms3vidA.mp4_5.png"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    write_wav(root / "Multi-sources/ms3_data/audio_wav/val/ms3vidB.wav", tone(0.3, 440))
    rgb = palette_rgb(box_mask(1, value=3))
    rgb[0, :4] = (9, 9, 9)
    write_png(root / "AVSS/v1s/uid_s/labels_rgb/0.png", rgb)
    for k in (8, 9):
        (root / f"AVSS/v2/uid_v2/labels_rgb/{k}.png").unlink()
    write_png(root / "AVSS/v1m/uid_m/labels_semantic/2.png", (box_mask(0) * 128).astype(np.uint8))
    # a meta row whose folders do not exist, and a row with a bad split
    write_csv(root / "Single-source/s4_meta_data.csv", ["name", "start", "category", "split"],
              [["s4clipA", 0, "dog", "train"], ["s4clipB", 3, "cat", "test"], ["ghost", 0, "dog", "val"],
               ["oddsplit", 0, "dog", "testing"]])
    return [
        ("s4clipB.wav", "NaN"),
        ("s4clipB_2.png", "missing frame"),
        ("s4clipB_4.png", "mask size 10x10"),
        ("s4clipA.wav", "44100 Hz"),
        ("ms3vidA.mp4_5.png", "unreadable image"),
        ("ms3vidB.wav", "too short"),
        ("labels_rgb/0.png", "outside the 5-class"),
        ("uid_v2/labels_rgb", "mismatched frame and mask counts"),
        ("labels_semantic/2.png", "exceed the 5 classes"),
        ("visual_frames/val/dog/ghost", "folder of this meta CSV row is missing"),
        ("s4_meta_data.csv", "unknown split 'testing'"),
    ]


def test_damaged_tree_lists_every_problem(pristine, tmp_path, capsys):
    root = tmp_path / "tree"
    shutil.copytree(pristine, root)
    expected = _damage(root)
    problems = check_dataset(root, show_progress=False)
    assert all(isinstance(p, Problem) and p.path and p.problem and p.hint for p in problems)
    for suffix, words in expected:
        hits = [p for p in problems if p.path.endswith(suffix) and words in p.problem]
        assert hits, f"{suffix}: {words!r} not reported; got:\n" + "\n".join(map(str, problems))
    # one line per defect: a meta row without folders is one problem, not one per missing file
    assert len(problems) == len(expected), "\n".join(map(str, problems))

    assert cli([str(root), "--no-progress"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(problems) + 1 and lines[-1].startswith(f"check-data: {len(problems)} problem(s)")

    only_avss = check_dataset(root, ["avss"], ["test"], show_progress=False)
    assert len(only_avss) == 1 and "mismatched" in only_avss[0].problem


def test_coprop_cli_dispatch_and_bad_roots(pristine, tmp_path, capsys):
    assert coprop_main(["check-data", str(pristine), "--subset", "s4", "--no-progress"]) == 0
    assert check_dataset(tmp_path, show_progress=False)[0].problem.startswith("no AVSBench subset found")
    probs = check_dataset(tmp_path, ["ms3"], show_progress=False)
    assert len(probs) == 1 and probs[0].path.endswith("ms3_meta_data.csv")
    assert cli([str(tmp_path), "--no-progress"]) == 1
