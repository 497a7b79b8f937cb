"""`coprop evaluate` against values computed here with numpy (not coprop's metric code), on hand-built trees.

Oracles: J per reference/avsbench.md §1.1 (empty GT -> TN / HW); F per §1.2 with the threshold test done in exact
integers (an 8-bit value v passes threshold k/254 iff 254 v >= 255 k); AVSS per §1.4; nearest resizing as
Pillow does it (source pixel floor((x + 0.5) * in / out)).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from avsbench_tree import frame_image, palette_rgb, tone, write_csv, write_png, write_wav
from PIL import Image

from coprop.cli import main as coprop_main
from coprop.evaluate import evaluate

H, W = 12, 16
AVSS_NAMES = ["background", "dog", "cat", "man", "car"]   # 5 classes; "car" (4) never appears anywhere


def ms3_tree(root, masks: dict[str, np.ndarray]) -> None:
    """An MS3-layout test split: one clip per entry of ``masks`` ({name: [5,H,W] 0/1})."""
    ms3 = root / "Multi-sources"
    write_csv(ms3 / "ms3_meta_data.csv", ["video_id", "split"], [[n, "test"] for n in masks])
    for seed, (name, m) in enumerate(masks.items()):
        for k in range(5):
            write_png(ms3 / f"ms3_data/visual_frames/{name}/{name}.mp4_{k + 1}.png", frame_image(seed, k)[:H, :W])
            write_png(ms3 / f"ms3_data/gt_masks/test/{name}/{name}_{k + 1}.png", (m[k] * 255).astype(np.uint8))
        write_wav(ms3 / f"ms3_data/audio_wav/test/{name}.wav", tone(5.0, 440))


def avss_tree(root, labels: dict[str, tuple[str, np.ndarray]]) -> None:
    """An AVSS-layout test split: {uid: (label v1m|v2, class ids [T,H,W])}, GT as palette RGB PNGs."""
    avss = root / "AVSS"
    avss.mkdir(parents=True)
    (avss / "label2idx.json").write_text(json.dumps({n: i + 1 for i, n in enumerate(AVSS_NAMES)}))
    write_csv(avss / "metadata.csv", ["vid", "uid", "split", "label"],
              [[f"v{i}", uid, "test", lab] for i, (uid, (lab, _)) in enumerate(labels.items())])
    for uid, (lab, ids) in labels.items():
        for t in range(len(ids)):
            write_png(avss / lab / uid / "frames" / f"{t}.png", frame_image(1, t)[:H, :W])
            write_png(avss / lab / uid / "labels_rgb" / f"{t}.png", palette_rgb(ids[t]))
        write_wav(avss / lab / uid / "audio.wav", tone(len(ids), 300))


def nearest(a: np.ndarray, size: int) -> np.ndarray:
    ys = np.minimum(((np.arange(size) + 0.5) * a.shape[-2] / size).astype(int), a.shape[-2] - 1)
    xs = np.minimum(((np.arange(size) + 0.5) * a.shape[-1] / size).astype(int), a.shape[-1] - 1)
    return a[..., ys[:, None], xs[None, :]]


def oracle_binary(values: list[np.ndarray], gts: list[np.ndarray], fbatch: int) -> tuple[float, float]:
    """(J, F) of 8-bit prediction values [5,h,w] per clip against 0/1 GT, official aggregation."""
    ious, batches = [], []
    for b in range(0, len(gts), fbatch):
        curves = []
        for v, g in zip(values[b:b + fbatch], gts[b:b + fbatch]):
            for vf, gf in zip(v, g):
                p = vf >= 128                      # v / 255 > 0.5
                if gf.sum() == 0:
                    ious.append((~p).sum() / gf.size)
                    continue
                ious.append((p & (gf > 0)).sum() / (p | (gf > 0)).sum())
                # a pixel passes thresholds k = 0 .. 254 v // 255 (254 v >= 255 k, exact integers)
                last = 254 * vf.astype(np.int64) // 255
                n_pred = np.bincount(last.ravel(), minlength=255)[::-1].cumsum()[::-1]   # #(last >= k)
                tp = np.bincount(last[gf > 0], minlength=255)[::-1].cumsum()[::-1]
                prec, rec = tp / (n_pred + 1e-20), tp / gf.sum()
                with np.errstate(invalid="ignore"):
                    f = 1.3 * prec * rec / (0.3 * prec + rec)
                curves.append(np.nan_to_num(f))
        batches.append(np.mean(curves, 0).max() if curves else 0.0)
    return float(np.mean(ious)), float(np.mean(batches))


@pytest.fixture()
def binary_case(tmp_path):
    rng = np.random.default_rng(3)
    gts = {}
    for c in range(5):
        m = np.zeros((5, H, W), np.int64)
        for k in range(5):
            if (c + k) % 4:                       # every 4th frame has empty GT, as MS3 has
                y, x = rng.integers(0, 6), rng.integers(0, 8)
                m[k, y:y + 5, x:x + 7] = 1
        gts[f"vid{c}"] = m
    gts["vid4"][:] = 0                            # a clip without any sounding object
    ms3_tree(tmp_path / "data", gts)
    pred = tmp_path / "pred"
    values = {}
    for name, m in gts.items():
        v = np.clip(m * 200 + rng.integers(0, 90, m.shape), 0, 255).astype(np.uint8)
        v[:, 0, 0] = 127                          # just below 0.5: background for J
        v[:, 0, 1] = 128                          # just above
        values[name] = v
        for k in range(5):
            write_png(pred / name / f"{name}_{k + 1}.png", v[k])
    return tmp_path, gts, values


def test_binary_protocols_and_problem_files(binary_case, capsys):
    tmp, gts, values = binary_case
    pred = tmp / "pred"
    # damage: one missing, one mis-sized, one unreadable, and one extra file
    (pred / "vid0/vid0_2.png").unlink()
    write_png(pred / "vid1/vid1_3.png", np.zeros((H + 1, W), np.uint8))
    (pred / "vid2/vid2_1.png").write_bytes(b"not a png")
    write_png(pred / "vid9/vid9_1.png", np.zeros((H, W), np.uint8))
    for name, k in (("vid0", 1), ("vid1", 2), ("vid2", 0)):
        values[name][k] = 0                       # each scores as an empty prediction
    s = evaluate(pred, tmp / "data", "ms3", "test", tmp / "out", show_progress=False)

    names = list(gts)
    v, g = [values[n] for n in names], [gts[n] for n in names]
    for proto, fb in (("official", 4), ("fbatch1", 1), ("fbatch2", 2)):
        J, F = oracle_binary([nearest(x, 224) for x in v], [nearest(x, 224) for x in g], fb)
        assert s["protocols"][proto]["J"] == pytest.approx(J, abs=1e-6)
        assert s["protocols"][proto]["F"] == pytest.approx(F, abs=1e-6), proto
    J, F = oracle_binary([nearest(x, 512) for x in v], [nearest(x, 512) for x in g], 2)
    assert s["protocols"]["avsegformer_512"]["J"] == pytest.approx(J, abs=1e-6)
    assert s["protocols"]["avsegformer_512"]["F"] == pytest.approx(F, abs=1e-6)
    J, F = oracle_binary(v, g, 4)
    assert (s["protocols"]["native"]["J"], s["protocols"]["native"]["F"]) == (pytest.approx(J, abs=1e-6),
                                                                              pytest.approx(F, abs=1e-6))
    assert (s["J"], s["F"]) == (s["protocols"]["official"]["J"], s["protocols"]["official"]["F"])
    # F depends on the F-batch size here (an all-empty clip makes a whole batch of 1 score 0)
    assert s["protocols"]["fbatch1"]["F"] != pytest.approx(s["protocols"]["official"]["F"], abs=1e-3)

    empty = sum(int(x.sum() == 0) for m in g for x in m)
    assert s["empty_gt_frames"] == empty and s["frames"] == 25
    assert s["predictions"] | {"formats": None} == {"expected": 25, "ok": 22, "missing": 1, "unreadable": 1,
                                                     "mis-sized": 1, "extra": 1, "formats": None}
    probs = s["problems"]
    assert probs["missing"] == [str(pred / "vid0/vid0_2.png")]
    assert probs["mis-sized"][0].startswith(str(pred / "vid1/vid1_3.png")) and "16x13" in probs["mis-sized"][0]
    assert probs["unreadable"][0].startswith(str(pred / "vid2/vid2_1.png"))
    assert probs["extra"] == [str(pred / "vid9/vid9_1.png")]

    out = tmp / "out"
    assert json.loads((out / "summary.json").read_text())["J"] == s["J"]
    frames = (out / "frames.csv").read_text().splitlines()
    assert len(frames) == 26 and "vid0,1,vid0/vid0_2.png" in frames[2] and ",missing," in frames[2]
    problems = (out / "problems.csv").read_text().splitlines()
    assert len(problems) == 5 and problems[0] == "kind,path,detail"
    clips = (out / "clips.csv").read_text().splitlines()
    assert len(clips) == 6


def test_cli_exit_codes_and_output(binary_case, capsys):
    tmp, _, _ = binary_case
    args = [str(tmp / "pred"), "--data-root", str(tmp / "data"), "--subset", "ms3", "--split", "test",
            "--out", str(tmp / "o"), "--no-progress"]
    assert coprop_main(["evaluate", *args]) == 0
    out = capsys.readouterr().out
    assert "official" in out and "avsegformer_512" in out and "alignment rate" in out
    (tmp / "pred/vid3/vid3_5.png").unlink()
    assert coprop_main(["evaluate", *args]) == 0
    assert coprop_main(["evaluate", *args, "--strict"]) == 1
    assert f"missing: {tmp / 'pred/vid3/vid3_5.png'}" in capsys.readouterr().out
    assert coprop_main(["evaluate", str(tmp / "nowhere"), *args[1:]]) == 1
    assert "prediction folder does not exist" in capsys.readouterr().err
    # a broken GT clip is listed, the others are still scored, and the exit status says so
    (tmp / "data/Multi-sources/ms3_data/gt_masks/test/vid1/vid1_4.png").unlink()
    assert coprop_main(["evaluate", *args]) == 1
    s = json.loads((tmp / "o/summary.json").read_text())
    assert s["clips"] == 4 and s["gt_errors"][0]["clip"] == "vid1"
    assert "gt_masks/test/vid1" in s["gt_errors"][0]["error"] and "[4]" in s["gt_errors"][0]["error"]
    assert not s["problems"]["extra"] or all("vid1" not in p for p in s["problems"]["extra"])


def oracle_avss(pairs: list[tuple[np.ndarray, np.ndarray]], C: int, pad: bool) -> tuple[float, float]:
    iou_sum, f_sum, cnt = np.zeros(C), np.zeros(C), np.zeros(C)
    for pred, gt in pairs:
        for p, g in zip(pred, gt):
            for c in range(C):
                inter, np_, ng = ((p == c) & (g == c)).sum(), (p == c).sum(), (g == c).sum()
                union = np_ + ng - inter
                if union == 0:
                    continue
                cnt[c] += 1
                iou_sum[c] += inter / union
                if inter:
                    prec, rec = inter / np_, inter / ng
                    f_sum[c] += 1.3 * prec * rec / (0.3 * prec + rec)
        if pad and len(gt) < 10:
            iou_sum[0] += 10 - len(gt)
            f_sum[0] += 10 - len(gt)
            cnt[0] += 10 - len(gt)
    with np.errstate(invalid="ignore"):
        return float(np.nan_to_num(iou_sum / cnt).mean()), float(np.nan_to_num(f_sum / cnt).mean())


def test_avss_padded_clean_and_formats(tmp_path):
    rng = np.random.default_rng(5)
    gt = {"u5": ("v1m", rng.integers(0, 3, (5, H, W))), "u10": ("v2", rng.integers(0, 4, (10, H, W)))}
    avss_tree(tmp_path / "data", gt)
    pred, preds = tmp_path / "pred", {}
    for uid, (_, ids) in gt.items():
        p = np.where(rng.random(ids.shape) < 0.7, ids, rng.integers(0, 4, ids.shape))
        preds[uid] = p
        for t in range(len(p)):
            path = pred / uid / f"{t}.png"
            if t % 3 == 0:
                write_png(path, palette_rgb(p[t]))                # colour palette PNG
            elif t % 3 == 1:
                write_png(path, p[t].astype(np.uint8))            # grayscale class index
            else:
                img = Image.fromarray(p[t].astype(np.uint8), mode="P")
                img.putpalette(palette_rgb(np.arange(256)).reshape(-1).tolist())
                path.parent.mkdir(parents=True, exist_ok=True)
                img.save(path)                                    # palette-index ('P') PNG
    s = evaluate(pred, tmp_path / "data", "avss", "test", tmp_path / "out", show_progress=False)
    pairs = [(preds[u], gt[u][1]) for u in gt]
    r224 = [(nearest(p, 224), nearest(g, 224)) for p, g in pairs]
    for proto, ps, pad in (("official", r224, True), ("clean", r224, False), ("native", pairs, True)):
        miou, f = oracle_avss(ps, len(AVSS_NAMES), pad)
        assert s["protocols"][proto]["J"] == pytest.approx(miou, abs=1e-6), proto
        assert s["protocols"][proto]["F"] == pytest.approx(f, abs=1e-6), proto
    assert s["protocols"]["official"]["padded_frames"] == 5 and s["protocols"]["clean"]["padded_frames"] == 0
    assert s["mIoU"] == s["J"] and s["protocols"]["official"]["classes_seen"] == 4
    assert s["predictions"]["formats"] == {"palette": 6, "index": 9}
    assert s["predictions"]["ok"] == 15 and s["alignment"]["n_all"] == 15 and s["empty_gt_frames"] == 0


def test_ground_truth_and_empty_predictions_on_synthetic_smoke(tmp_path):
    """The Done-when check of issue 11 on the smoke preset: GT as prediction -> J = F = 1 (S4, MS3); empty
    predictions -> J = the share of empty-GT frames (counted here from the GT PNGs)."""
    from coprop.data.synth import generate

    root = generate(tmp_path / "syn", "smoke", 0)
    for subset, gt_dir in (("s4", "Single-source/s4_data/gt_masks/test"),
                           ("ms3", "Multi-sources/ms3_data/gt_masks/test")):
        s = evaluate(root / gt_dir, root, subset, "test", show_progress=False)
        assert s["predictions"]["ok"] == s["frames"] > 0 and not s["problems"]["extra"]
        for proto in s["protocols"].values():
            assert (proto["J"], proto["F"]) == (pytest.approx(1.0, abs=1e-6), pytest.approx(1.0, abs=1e-6))
        empty_dir = tmp_path / f"empty-{subset}"
        n_empty = n = 0
        for p in sorted((root / gt_dir).rglob("*.png")):
            g = np.asarray(Image.open(p))
            n, n_empty = n + 1, n_empty + int(g.max() == 0)
            write_png(empty_dir / p.relative_to(root / gt_dir), np.zeros_like(g))
        s = evaluate(empty_dir, root, subset, "test", show_progress=False)
        assert n == s["frames"] and s["empty_gt_frames"] == n_empty
        assert s["J"] == pytest.approx(n_empty / n, abs=1e-6)
        if subset == "ms3":
            assert 0 < n_empty < n            # the check means something only with both kinds of frame


def test_predictions_at_the_evaluation_size(binary_case):
    """Models output 224x224 (or 512x512): such a file is scored as stored at 224 and resized for 'native'."""
    tmp, gts, values = binary_case
    pred = tmp / "pred224"
    for name, v in values.items():
        for k in range(5):
            write_png(pred / name / f"{name}_{k + 1}.png", nearest(v[k], 224))
    s = evaluate(pred, tmp / "data", "ms3", "test", show_progress=False)
    v, g = list(values.values()), list(gts.values())
    J, F = oracle_binary([nearest(x, 224) for x in v], [nearest(x, 224) for x in g], 4)
    assert (s["J"], s["F"]) == (pytest.approx(J, abs=1e-6), pytest.approx(F, abs=1e-6))
    J, F = oracle_binary(v, g, 4)   # nearest down-sampling of a nearest up-sampled map gives it back
    assert s["protocols"]["native"]["J"] == pytest.approx(J, abs=1e-6)
    assert s["predictions"]["ok"] == 25 and not any(s["problems"].values())
