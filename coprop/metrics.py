"""AVSBench metrics, bit-exact with the official code (reference/avsbench.md §1), and the Alignment Rate.

- ``binary_jaccard`` / ``binary_fmeasure``: S4/MS3 M_J and M_F on raw logits, float32 throughout, with the
  official quirks kept: empty-GT frames score TN/(H*W) in J and are skipped in F; F is the max over a PR-F curve
  averaged over the frames of one *F-batch* of videos, so it depends on the batch size (``fbatch``).
- ``AVSSAccumulator`` / ``avss_scores``: per-class, per-frame IoU and F averaged over the frames where the class
  is in prediction or GT, then a plain mean over *all* classes (background included, absent classes count 0).
  The official drivers evaluate v1s/v1m clips padded to 10 frames, each padded frame adding IoU = F = 1 to the
  background class; ``add_padded`` reproduces that ("padded" protocol), leaving it out is the "clean" one.
- ``alignment_rate``: share of assessed frames whose predicted sounding object is the GT one (DESIGN §4).
- ``Evaluator``: a dataset-level driver that aggregates exactly as the official test scripts do, keeps per-clip
  rows, and records bad clips instead of stopping.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from coprop.controlpoints.annotate import AREA_FLOOR, control_points_from_masks
from coprop.errors import DataError

BETA2 = 0.3
NUM_THRESHOLDS = 255
AVSS_CLASSES = 71
AVSS_EPS = 2.22e-16


def _tensor(x, dtype=torch.float32) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.detach().to("cpu", dtype)


def avss_labels(logits) -> torch.Tensor:
    """Predicted class map [N,H,W] (CPU) = argmax of the float32 softmax over dim 1 (ties: first class), computed
    on the device the logits live on (the official scripts run it on the GPU; on CPU it dominates AVSS scoring)."""
    lg = logits if isinstance(logits, torch.Tensor) else torch.as_tensor(np.asarray(logits))
    lg = lg.detach().float()
    if lg.ndim != 4:
        raise ValueError(f"AVSS: logits must be [N,K,H,W], got {tuple(lg.shape)}")
    return torch.argmax(torch.softmax(lg, 1), 1).cpu()


def _check3(logits: torch.Tensor, gt: torch.Tensor, what: str) -> None:
    if logits.ndim != 3 or logits.shape != gt.shape:
        raise ValueError(f"{what}: logits and gt must both be [N,H,W], got {tuple(logits.shape)} and {tuple(gt.shape)}")


# ------------------------------------------------------------------------------------------------ binary J
def binary_jaccard(logits, gt) -> torch.Tensor:
    """Per-frame IoU, float32 [N], of ``sigmoid(logits) > 0.5`` against {0,1} ``gt`` (official ``mask_iou``).

    The official function returns the batch mean of this vector; a frame with empty GT scores the fraction of
    pixels predicted background (1 only for an empty prediction). Float32 sigmoid(x) == 0.5 exactly for
    0 < x <~ 1.2e-7, so such tiny positive logits count as background here, as they do officially.
    """
    pred, target = _tensor(logits), _tensor(gt)
    _check3(pred, target, "binary_jaccard")
    H, W = pred.shape[-2:]
    empty = target.sum(2).sum(1) == 0
    p = (torch.sigmoid(pred) > 0.5).int()
    inter = (p * target).sum(2).sum(1)
    union = torch.max(p, target).sum(2).sum(1)
    inter_empty = ((1 - target) * (1 - p)).sum(2).sum(1)
    inter[empty] = inter_empty[empty]
    union[empty] = float(H * W)
    return inter / (union + 1e-7)


# ------------------------------------------------------------------------------------------------ binary F
def _thresholds() -> torch.Tensor:
    # 1 - 1e-10 rounds to exactly 1.0 in float32: the last threshold keeps only prob == 1.0 pixels
    return torch.linspace(0, 1 - 1e-10, NUM_THRESHOLDS, dtype=torch.float32)


def fmeasure_curves(logits, gt) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame F-curves float32 [N,255] over the official thresholds, and which frames have non-empty GT.

    Pixel counts per threshold come from one sort-free pass: a pixel with probability p is counted at every
    threshold th[k] <= p, i.e. for k < searchsorted(th, p, right=True). The counts are exact integers, so P, R
    and F are the same float32 values the official 255-iteration loop produces.
    """
    pred, target = _tensor(logits), _tensor(gt)
    _check3(pred, target, "fmeasure_curves")
    th = _thresholds()
    N = pred.shape[0]
    curves = torch.zeros(N, NUM_THRESHOLDS, dtype=torch.float32)
    nonempty = torch.zeros(N, dtype=torch.bool)
    for i in range(N):
        g = target[i]
        if torch.mean(g) == 0.0:
            continue
        nonempty[i] = True
        idx = torch.searchsorted(th, torch.sigmoid(pred[i]).reshape(-1), right=True)
        hist_all = torch.bincount(idx, minlength=NUM_THRESHOLDS + 1)
        hist_tp = torch.bincount(idx[g.reshape(-1) > 0], minlength=NUM_THRESHOLDS + 1)
        n_pred = hist_all.flip(0).cumsum(0).flip(0)[1:].to(torch.float32)   # #(prob >= th[k])
        tp = hist_tp.flip(0).cumsum(0).flip(0)[1:].to(torch.float32)
        prec = tp / (n_pred + 1e-20)
        recall = tp / (g.sum() + 1e-20)
        f = (1 + BETA2) * prec * recall / (BETA2 * prec + recall)
        f[f != f] = 0
        curves[i] = f
    return curves, nonempty


def fmeasure_from_curves(curves: torch.Tensor, nonempty: torch.Tensor) -> float:
    """One F-batch: average the curves of non-empty-GT frames (in order, float32), take the max; 0 if none."""
    avg, n = None, 0
    for c, ok in zip(curves, nonempty):
        if ok:
            avg = c.clone() if avg is None else avg + c
            n += 1
    if n == 0:
        return 0.0
    return float((avg / n).max().item())


def binary_fmeasure(logits, gt) -> float:
    """Official ``Eval_Fmeasure`` of one batch of frames ([N,H,W] logits and {0,1} GT)."""
    return fmeasure_from_curves(*fmeasure_curves(logits, gt))


# ------------------------------------------------------------------------------------------------ AVSS
class AVSSAccumulator:
    """Per-class sums over frames of the official AVSS protocol (``compute_color_metrics``)."""

    def __init__(self, num_classes: int = AVSS_CLASSES):
        self.num_classes = int(num_classes)
        self.iou_sum = torch.zeros(self.num_classes, dtype=torch.float32)
        self.f_sum = torch.zeros(self.num_classes, dtype=torch.float32)
        self.count = torch.zeros(self.num_classes, dtype=torch.float32)
        self.frames = 0
        self.padded = 0

    def frame_stats(self, labels: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(iou [N,C], f [N,C], counted [N,C]) for predicted label maps and GT label maps [N,H,W]."""
        C = self.num_classes
        labels, gt = torch.as_tensor(labels).long(), torch.as_tensor(gt).long()
        if labels.shape != gt.shape or labels.ndim != 3:
            raise ValueError(f"AVSS: prediction and gt must both be [N,H,W], got {tuple(labels.shape)}, "
                             f"{tuple(gt.shape)}")
        if gt.numel() and (int(gt.min()) < 0 or int(gt.max()) >= C):
            raise ValueError(f"AVSS: gt holds class ids {int(gt.min())}..{int(gt.max())}, outside 0..{C - 1}")
        if labels.numel() and int(labels.max()) >= C:
            raise ValueError(f"AVSS: predicted class {int(labels.max())} >= num_classes {C}")
        N = labels.shape[0]
        off = (torch.arange(N) * C)[:, None]
        flat_p, flat_g = (labels.reshape(N, -1) + off).reshape(-1), (gt.reshape(N, -1) + off).reshape(-1)
        hit = labels.reshape(N, -1) == gt.reshape(N, -1)
        inter = torch.bincount(flat_p[hit.reshape(-1)], minlength=N * C).reshape(N, C).float()
        area_p = torch.bincount(flat_p, minlength=N * C).reshape(N, C).float()
        area_g = torch.bincount(flat_g, minlength=N * C).reshape(N, C).float()
        union = area_p + area_g - inter
        iou = inter / (union + AVSS_EPS)
        prec, recall = inter / area_p, inter / area_g
        f = (1 + BETA2) * prec * recall / (BETA2 * prec + recall)
        f[f != f] = 0
        return iou, f, union > 0

    def add_labels(self, labels, gt) -> None:
        iou, f, counted = self.frame_stats(labels, gt)
        for i in range(iou.shape[0]):  # frame by frame, as the official loop sums them
            self.iou_sum += iou[i]
            self.f_sum += f[i]
            self.count += counted[i].float()
        self.frames += iou.shape[0]

    def add(self, logits, gt) -> None:
        """``logits`` [N,K,H,W] with K <= num_classes; prediction = argmax of the softmax (ties: first class)."""
        self.add_labels(avss_labels(logits), gt)

    def add_padded(self, n: int) -> None:
        """``n`` padded frames: all-zero logits -> background everywhere vs all-background GT: IoU = F = 1 on bg."""
        self.iou_sum[0] += float(n)
        self.f_sum[0] += float(n)
        self.count[0] += float(n)
        self.padded += int(n)

    def per_class(self) -> tuple[torch.Tensor, torch.Tensor]:
        miou = self.iou_sum / self.count
        fc = self.f_sum / self.count
        miou[miou != miou] = 0
        fc[fc != fc] = 0
        return miou, fc

    def result(self) -> tuple[float, float]:
        miou, fc = self.per_class()
        return float(torch.mean(miou).item()), float(torch.mean(fc).item())


def avss_scores(logits, gt, num_classes: int | None = None) -> tuple[float, float]:
    """(mIoU, F) of one batch [N,K,H,W] / [N,H,W] under the official per-class per-frame protocol.

    ``num_classes`` defaults to K (71 on AVSBench-semantic); classes never seen still divide the mean.
    """
    acc = AVSSAccumulator(num_classes or tuple(logits.shape)[1])
    acc.add(logits, gt)
    return acc.result()


# ------------------------------------------------------------------------------------------------ alignment
def _near_mask(T: int, control_points: Sequence[int], k: int) -> np.ndarray:
    near = np.zeros(T, dtype=bool)
    for t, c in enumerate(control_points):
        if c and t >= 1:  # c[0] = 1 by convention, not a conversion
            near[max(0, t - k):t + k + 1] = True
    return near


def frame_alignment(pred, gt, mode: str, tau: float = 0.5, area_floor: float = AREA_FLOOR) -> bool:
    """Is the predicted sounding object of one frame the GT one?

    semantic: the sets of classes (ignoring background) covering more than ``area_floor`` of the frame agree.
    binary: both empty (area <= floor), or both non-empty with IoU >= ``tau``.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    floor = area_floor * pred.size
    if mode == "semantic":
        def classes(m):
            ids, n = np.unique(m, return_counts=True)
            return {int(i) for i, c in zip(ids, n) if i != 0 and c > floor}
        return classes(pred) == classes(gt)
    if mode != "binary":
        raise ValueError(f"mode must be 'binary' or 'semantic', got {mode!r}")
    p, g = pred > 0, gt > 0
    p_empty, g_empty = p.sum() <= floor, g.sum() <= floor
    if p_empty or g_empty:
        return bool(p_empty and g_empty)
    return bool((p & g).sum() / (p | g).sum() >= tau)


def alignment_rate(pred, gt, mode: str, control_points: Sequence[int] | None = None, k: int | None = None,
                   tau: float = 0.5, area_floor: float = AREA_FLOOR, gt_available=None) -> dict[str, Any]:
    """Alignment Rate of one clip: predicted masks ``pred`` [T,H,W] (binary {0,1} or class ids) vs ``gt``.

    Returns rates over all assessed frames ('all'), frames within +-k (default 1) of a GT control point t >= 1
    ('near') and the rest ('far'), the matching counts, and ``per_frame`` (bool, None where no GT).
    ``control_points`` default: computed from ``gt`` by ``control_points_from_masks`` (same area floor).
    A rate over zero frames is NaN.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"alignment_rate: pred and gt must both be [T,H,W], got {pred.shape} and {gt.shape}")
    T = gt.shape[0]
    avail = np.ones(T, bool) if gt_available is None else np.asarray(gt_available, bool)
    if control_points is None:
        control_points = control_points_from_masks(gt, mode, area_floor=area_floor, gt_available=avail)
    near = _near_mask(T, control_points, 1 if k is None else int(k))
    per_frame = [frame_alignment(pred[t], gt[t], mode, tau, area_floor) if avail[t] else None for t in range(T)]
    out: dict[str, Any] = {"per_frame": per_frame}
    for key, sel in (("all", avail), ("near", avail & near), ("far", avail & ~near)):
        hits = [per_frame[t] for t in range(T) if sel[t]]
        out[f"n_{key}"] = len(hits)
        out[f"aligned_{key}"] = int(sum(hits))
        out[key] = sum(hits) / len(hits) if hits else math.nan
    return out


# ------------------------------------------------------------------------------------------------ dataset level
class Evaluator:
    """Dataset-level scores, aggregated the way the official test scripts aggregate them.

    mode 'binary' (S4/MS3): J = mean IoU over all annotated frames; F = mean over F-batches of ``fbatch``
    consecutive videos (in ``add`` order) of the batch max-F (official test.sh uses 4, AVSegFormer 2).
    mode 'semantic' (AVSS): per-class per-frame mIoU and F over the dataset; ``avss_padded`` adds, for each clip
    shorter than ``pad_to`` frames, the padded frames' background IoU = F = 1 (official AVSB/AVSegFormer);
    off = the clean protocol (COMBO). Alignment rates pool frames over clips.

    Use ``add`` per clip; wrap it as ``try: ev.add(...) except Exception as e: ev.add_error(name, e)`` so one bad
    clip is reported in ``result()['bad']`` and the others are still scored.
    """

    def __init__(self, mode: str, fbatch: int = 4, num_classes: int | None = None, avss_padded: bool = True,
                 pad_to: int = 10, tau: float = 0.5, k: int = 1, area_floor: float = AREA_FLOOR):
        if mode not in ("binary", "semantic"):
            raise ValueError(f"Evaluator mode must be 'binary' or 'semantic', got {mode!r}")
        if fbatch < 1:
            raise ValueError("fbatch must be >= 1")
        self.mode, self.fbatch, self.num_classes = mode, int(fbatch), num_classes
        self.avss_padded, self.pad_to = bool(avss_padded), int(pad_to)
        self.tau, self.k, self.area_floor = tau, int(k), area_floor
        self._ious: list[torch.Tensor] = []
        self._curves: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._acc: AVSSAccumulator | None = None
        self._align = {"n_all": 0, "aligned_all": 0, "n_near": 0, "aligned_near": 0, "n_far": 0, "aligned_far": 0}
        self.rows: list[dict[str, Any]] = []
        self.bad: list[dict[str, str]] = []

    def _prepare(self, name, logits, gt, gt_available):
        g = torch.as_tensor(np.asarray(gt) if not isinstance(gt, torch.Tensor) else gt).long().cpu()
        if self.mode == "semantic":  # scored from the argmax map, computed where the logits live
            lg = logits.detach().float() if isinstance(logits, torch.Tensor) else _tensor(logits)
        else:
            lg = _tensor(logits)
        if g.ndim != 3:
            raise DataError(None, f"clip {name}: gt must be [T,H,W], got shape {tuple(g.shape)}")
        if self.mode == "binary" and lg.ndim == 4:
            if lg.shape[1] != 1:
                raise DataError(None, f"clip {name}: binary mode expects logits [T,1,H,W], got {tuple(lg.shape)}",
                                "use mode='semantic' for multi-class logits")
            lg = lg[:, 0]
        want = 3 if self.mode == "binary" else 4
        if lg.ndim != want or lg.shape[0] != g.shape[0] or tuple(lg.shape[-2:]) != tuple(g.shape[-2:]):
            raise DataError(None, f"clip {name}: logits {tuple(lg.shape)} do not match gt {tuple(g.shape)}",
                            "predictions must be at the GT resolution, one per frame")
        avail = torch.ones(g.shape[0], dtype=torch.bool) if gt_available is None else torch.as_tensor(
            np.asarray(gt_available, bool))
        if avail.shape != (g.shape[0],):
            raise DataError(None, f"clip {name}: gt_available has {avail.numel()} entries for {g.shape[0]} frames")
        if self.mode == "binary" and g.numel() and (int(g.min()) < 0 or int(g.max()) > 1):
            raise DataError(None, f"clip {name}: binary gt must be 0/1, found values up to {int(g.max())}")
        return lg, g, avail

    def add(self, name: str, logits, gt, gt_available=None, control_points: Sequence[int] | None = None) -> dict:
        """Score one clip: ``logits`` [T,1,H,W] or [T,H,W] (binary) / [T,K,H,W] (semantic), ``gt`` [T,H,W].

        ``control_points`` are the GT control points used for the near/far alignment split (default: computed
        from ``gt`` over the ``gt_available`` frames; pass them when scoring a subset of a clip's frames).
        Returns the clip's row (also kept in ``self.rows``): J (or mIoU) and F of the clip alone (as one
        F-batch), alignment rates.
        """
        lg, g, avail = self._prepare(name, logits, gt, gt_available)
        idx = torch.nonzero(avail).flatten()
        row: dict[str, Any] = {"clip": name, "frames": int(g.shape[0]), "annotated": int(idx.numel())}
        if self.mode == "binary":
            ious = binary_jaccard(lg[idx], g[idx])
            curves = fmeasure_curves(lg[idx], g[idx])
            pred = (torch.sigmoid(lg) > 0.5).long().numpy()
            row.update(J=float(ious.double().mean()) if idx.numel() else math.nan,
                       F=fmeasure_from_curves(*curves))
        else:
            K = lg.shape[1]
            C = self.num_classes or K
            if self._acc is None:
                self._acc = AVSSAccumulator(C)
            if K > self._acc.num_classes:
                raise DataError(None, f"clip {name}: {K} logit channels but num_classes={self._acc.num_classes}")
            labels = avss_labels(lg)
            clip_acc = AVSSAccumulator(self._acc.num_classes)
            clip_acc.add_labels(labels[idx], g[idx])  # validates class ids before anything is pooled
            pred = labels.numpy()
            miou, f = clip_acc.result()
            row.update(mIoU=miou, F=f)
        al = alignment_rate(pred, g.numpy(), self.mode, control_points, self.k, self.tau, self.area_floor,
                            avail.numpy())
        row.update(alignment=al["all"], alignment_near=al["near"], alignment_far=al["far"], n_near=al["n_near"])
        # everything validated: pool
        if self.mode == "binary":
            self._ious.append(ious)
            self._curves.append(curves)
        else:
            self._acc.add_labels(labels[idx], g[idx])
            if self.avss_padded and g.shape[0] < self.pad_to:
                self._acc.add_padded(self.pad_to - g.shape[0])
        for key in self._align:
            self._align[key] += al[key]
        self.rows.append(row)
        return row

    def add_error(self, name: str, exc: BaseException) -> None:
        self.bad.append({"clip": str(name), "error": f"{type(exc).__name__}: {exc}"})

    def result(self) -> dict[str, Any]:
        a = self._align
        out: dict[str, Any] = {
            "mode": self.mode, "clips": len(self.rows), "bad": list(self.bad),
            "alignment_all": a["aligned_all"] / a["n_all"] if a["n_all"] else math.nan,
            "alignment_near": a["aligned_near"] / a["n_near"] if a["n_near"] else math.nan,
            "alignment_far": a["aligned_far"] / a["n_far"] if a["n_far"] else math.nan,
            "n_frames": a["n_all"], "n_near": a["n_near"], "n_far": a["n_far"],
            "alignment_k": self.k, "alignment_tau": self.tau, "area_floor": self.area_floor,
        }
        if self.mode == "binary":
            frames = torch.cat(self._ious) if self._ious else torch.zeros(0)
            fscores = []
            for b in range(0, len(self._curves), self.fbatch):
                group = self._curves[b:b + self.fbatch]
                fscores.append(fmeasure_from_curves(torch.cat([c for c, _ in group]), torch.cat([e for _, e in group])))
            out.update(J=float(frames.double().mean()) if frames.numel() else math.nan,
                       F=float(np.mean(fscores)) if fscores else math.nan, fbatch=self.fbatch,
                       f_batches=len(fscores))
        else:
            acc = self._acc or AVSSAccumulator(self.num_classes or AVSS_CLASSES)
            miou, f = acc.result() if acc.frames or acc.padded else (math.nan, math.nan)
            out.update(mIoU=miou, J=miou, F=f, num_classes=acc.num_classes, padded_frames=acc.padded,
                       avss_protocol="padded" if self.avss_padded else "clean", pad_to=self.pad_to)
        return out

    def table(self):
        """Per-clip rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)
