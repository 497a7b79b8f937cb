"""coprop.metrics against the official golden cases (reference/avsbench.md §1) and hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coprop.errors import DataError
from coprop.metrics import (AVSSAccumulator, Evaluator, alignment_rate, avss_scores, binary_fmeasure,
                            binary_jaccard, fmeasure_curves)


def full(v, n=4, s=5):
    return torch.full((n, s, s), float(v))


# ---------------------------------------------------------------- official golden cases (utility.py __main__)
@pytest.mark.parametrize("pred,target,expected", [
    (full(1), full(1), 1.0),
    (full(0), full(0), 1.0),   # sigmoid(0) = 0.5 is not > 0.5; empty GT -> TN/25 = 1
    (full(0), full(1), 0.0),
    (full(1), full(0), 0.0),
    (full(1), torch.cat([full(0, 2), full(1, 2)]), 0.5),
    (torch.cat([full(1, 2), full(0, 2)]), full(1), 0.5),
])
def test_official_golden_mask_iou(pred, target, expected):
    iou = binary_jaccard(pred, target)
    assert iou.shape == (4,) and iou.dtype == torch.float32
    assert float(iou.sum() / 4) == pytest.approx(expected, abs=1e-6)


def test_empty_gt_scores_true_negative_fraction():
    logits = torch.full((1, 4, 4), -5.0)
    logits[0, :2] = 5.0                       # half the frame predicted foreground
    assert float(binary_jaccard(logits, torch.zeros(1, 4, 4))[0]) == pytest.approx(0.5)


def test_threshold_sliver_tiny_positive_logits_are_background():
    assert float(torch.sigmoid(torch.tensor(5e-8))) == 0.5   # the float32 sliver itself
    gt = torch.ones(1, 3, 3)
    assert float(binary_jaccard(torch.full((1, 3, 3), 5e-8), gt)[0]) == 0.0
    assert float(binary_jaccard(torch.full((1, 3, 3), 1e-6), gt)[0]) == pytest.approx(1.0)


# ---------------------------------------------------------------- F-measure
def reference_fmeasure(pred, gt):
    """The official Eval_Fmeasure written out literally (255-iteration loop) as the bit-exact oracle."""
    prob = torch.sigmoid(pred.float())
    th = torch.linspace(0, 1 - 1e-10, 255)
    avg, n = 0.0, 0
    for i in range(prob.shape[0]):
        g = gt[i].float()
        if torch.mean(g) == 0.0:
            continue
        prec, recall = torch.zeros(255), torch.zeros(255)
        for k in range(255):
            y = (prob[i] >= th[k]).float()
            tp = (y * g).sum()
            prec[k], recall[k] = tp / (y.sum() + 1e-20), tp / (g.sum() + 1e-20)
        f = (1 + 0.3) * prec * recall / (0.3 * prec + recall)
        f[f != f] = 0
        avg += f
        n += 1
    return 0.0 if n == 0 else (avg / n).max().item()


def test_fmeasure_bit_exact_with_literal_loop():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(5, 12, 12, generator=g) * 3
    gt = (torch.rand(5, 12, 12, generator=g) > 0.6).float()
    gt[2] = 0  # one empty-GT frame, skipped
    assert binary_fmeasure(pred, gt) == reference_fmeasure(pred, gt)


def test_fmeasure_hand_cases():
    gt = torch.zeros(1, 5, 5)
    gt[0, 0] = 1                                           # 5 of 25 pixels
    perfect = torch.where(gt > 0, 10.0, -10.0)
    assert binary_fmeasure(perfect, gt) == pytest.approx(1.0)
    # everything predicted at every threshold below 1.0: P = 0.2, R = 1, F = 1.3*0.2/(0.06+1)
    assert binary_fmeasure(torch.full((1, 5, 5), 10.0), gt) == pytest.approx(0.26 / 1.06, rel=1e-6)
    # nothing above any threshold but th[0] = 0: every pixel counts at k = 0 only, as above
    assert binary_fmeasure(torch.full((1, 5, 5), -50.0), gt) == pytest.approx(0.26 / 1.06, rel=1e-6)


def test_fmeasure_all_empty_batch_is_zero_and_empty_frames_are_skipped():
    assert binary_fmeasure(torch.randn(3, 5, 5), torch.zeros(3, 5, 5)) == 0.0
    gt = torch.zeros(2, 5, 5)
    gt[1, 0] = 1
    perfect = torch.where(gt > 0, 10.0, -10.0)
    perfect[0] = 10.0  # a wrong prediction on the empty-GT frame does not count
    assert binary_fmeasure(perfect, gt) == pytest.approx(1.0)


def _two_videos():
    """Video A peaks at a low threshold, video B at a high one: the batch curve max < mean of per-video maxes."""
    gt = torch.zeros(2, 1, 5, 5)
    gt[:, 0, 0] = 1
    a = torch.where(gt[0] > 0, torch.logit(torch.tensor(0.3)), torch.tensor(-20.0))
    b = torch.where(gt[1] > 0, torch.logit(torch.tensor(0.8)), torch.tensor(0.0))
    return [a, b], gt


def test_fmeasure_depends_on_fbatch():
    (a, b), gt = _two_videos()
    results = {}
    for fb in (1, 2):
        ev = Evaluator("binary", fbatch=fb)
        ev.add("a", a, gt[0])
        ev.add("b", b, gt[1])
        results[fb] = ev.result()
        assert results[fb]["fbatch"] == fb
    assert results[1]["F"] == pytest.approx(1.0)
    assert results[2]["F"] == pytest.approx((1 + 0.26 / 1.06) / 2, rel=1e-6)
    assert results[2]["F"] == binary_fmeasure(torch.cat([a, b]), torch.cat([gt[0], gt[1]]))
    assert results[1]["J"] == results[2]["J"]


def test_fmeasure_curves_flags_empty_frames():
    curves, nonempty = fmeasure_curves(torch.zeros(2, 3, 3), torch.stack([torch.zeros(3, 3), torch.ones(3, 3)]))
    assert nonempty.tolist() == [False, True] and curves.shape == (2, 255) and float(curves[0].abs().sum()) == 0


# ---------------------------------------------------------------- AVSS
def _onehot_logits(labels, K):
    return torch.nn.functional.one_hot(torch.as_tensor(labels), K).permute(0, 3, 1, 2).float() * 5


def _avss_case():
    gt = torch.tensor([[[0, 1], [1, 1]], [[2, 2], [2, 2]]])
    pred = torch.tensor([[[0, 1], [0, 1]], [[2, 2], [2, 2]]])
    return _onehot_logits(pred, 3), gt


def test_avss_hand_case():
    logits, gt = _avss_case()
    # class 0: IoU 1/2, P 1/2 R 1 -> F 0.65/1.15; class 1: IoU 2/3, P 1 R 2/3 -> F 1.3*(2/3)/(0.3+2/3); class 2: 1, 1
    f0, f1 = 0.65 / 1.15, 1.3 * (2 / 3) / (0.3 + 2 / 3)
    miou, f = avss_scores(logits, gt)
    assert miou == pytest.approx((0.5 + 2 / 3 + 1) / 3, rel=1e-6)
    assert f == pytest.approx((f0 + f1 + 1) / 3, rel=1e-6)
    miou71, _ = avss_scores(logits, gt, num_classes=71)   # unseen classes still divide the mean
    assert miou71 == pytest.approx((0.5 + 2 / 3 + 1) / 71, rel=1e-6)


def test_avss_padded_vs_clean_protocol():
    logits, gt = _avss_case()
    lg5 = torch.cat([logits, logits, logits[:1]])          # a 5-frame clip
    gt5 = torch.cat([gt, gt, gt[:1]])
    padded, clean = Evaluator("semantic", num_classes=3), Evaluator("semantic", num_classes=3, avss_padded=False)
    for ev in (padded, clean):
        ev.add("clip", lg5, gt5)
    rp, rc = padded.result(), clean.result()
    assert rp["avss_protocol"] == "padded" and rp["padded_frames"] == 5 and rc["padded_frames"] == 0
    acc = AVSSAccumulator(3)
    acc.add(lg5, gt5)
    assert rc["mIoU"] == acc.result()[0]
    # background: 3 real frames at IoU 1/2 plus 5 padded frames at 1 -> (1.5 + 5) / 8
    bg_padded = (3 * 0.5 + 5) / 8
    assert rp["mIoU"] == pytest.approx((bg_padded + 2 / 3 + 1) / 3, rel=1e-6)
    assert rp["mIoU"] > rc["mIoU"]


def test_avss_rejects_out_of_range_gt():
    with pytest.raises(ValueError, match="outside"):
        avss_scores(torch.zeros(1, 3, 2, 2), torch.full((1, 2, 2), 5))


# ---------------------------------------------------------------- alignment rate
def _boxes():
    A = np.zeros((8, 8), int)
    A[:4, :4] = 1
    B = np.zeros((8, 8), int)
    B[4:, 4:] = 1
    E = np.zeros((8, 8), int)
    return A, B, E


def test_alignment_rate_binary_near_far():
    A, B, E = _boxes()
    gt = np.stack([A, A, B, B, E])
    pred = np.stack([A, A, A, B, E])              # late switch: frame 2 misaligned
    r = alignment_rate(pred, gt, "binary")        # GT control points [1,0,1,0,1] -> near {1,2,3,4}
    assert r["per_frame"] == [True, True, False, True, True]
    assert (r["all"], r["near"], r["far"]) == (0.8, 0.75, 1.0)
    assert (r["n_all"], r["n_near"], r["n_far"]) == (5, 4, 1)
    r0 = alignment_rate(pred, gt, "binary", control_points=[1, 0, 0, 0, 0])
    assert math.isnan(r0["near"]) and r0["far"] == 0.8


def test_alignment_rate_semantic_area_floor_and_unannotated():
    gt = np.zeros((2, 40, 40), int)
    gt[:, :10, :10] = 3
    pred = gt.copy()
    pred[0, 39, 39] = 5                            # 1 stray pixel < 0.1 % of 1600: ignored
    pred[1, 20:30, 20:30] = 5                      # a whole extra object: misaligned
    r = alignment_rate(pred, gt, "semantic")
    assert r["per_frame"] == [True, False]
    r = alignment_rate(pred, gt, "semantic", gt_available=[True, False])
    assert r["per_frame"] == [True, None] and r["n_all"] == 1 and r["all"] == 1.0


# ---------------------------------------------------------------- evaluator
def test_evaluator_binary_pools_frames_and_records_bad_clips():
    A, B, E = _boxes()
    gt = torch.as_tensor(np.stack([A, A, B, B, E]))
    logits = torch.where(gt > 0, 8.0, -8.0)[:, None]
    ev = Evaluator("binary", fbatch=4)
    ev.add("good", logits, gt, gt_available=[True, True, True, True, False])
    for name, lg in (("bad-shape", logits[:, :, :4]), ("bad-channels", logits.repeat(1, 2, 1, 1))):
        try:
            ev.add(name, lg, gt)
        except DataError as e:
            ev.add_error(name, e)
    res = ev.result()
    assert res["clips"] == 1 and [b["clip"] for b in res["bad"]] == ["bad-shape", "bad-channels"]
    assert "DataError" in res["bad"][0]["error"]
    assert res["J"] == pytest.approx(1.0) and res["F"] == pytest.approx(1.0) and res["n_frames"] == 4
    assert res["alignment_all"] == 1.0
    assert list(ev.table()["clip"]) == ["good"]


def test_evaluator_binary_j_is_frame_mean_with_empty_gt_rule():
    A, _, E = _boxes()
    gt = torch.as_tensor(np.stack([A, E]))
    logits = torch.full((2, 8, 8), 8.0)            # everything foreground
    ev = Evaluator("binary")
    ev.add("c", logits, gt)
    assert ev.result()["J"] == pytest.approx((16 / 64 + 0.0) / 2)


def test_avss_prediction_is_argmax_of_float32_softmax():
    from coprop.metrics import avss_labels

    logits = torch.zeros(1, 3, 1, 2)
    logits[0, 1, 0, 0] = 1e-8      # softmax rounds classes 0 and 1 to the same value: the first one wins
    logits[0, 2, 0, 1] = 1.0
    assert avss_labels(logits).tolist() == [[[0, 2]]]
    assert torch.argmax(logits, 1).tolist() == [[[1, 2]]]   # plain argmax of the logits would differ
