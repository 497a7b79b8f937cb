"""`coprop evaluate PRED_DIR`: score any method's predicted masks against an AVSBench-layout split.

The scores are coprop's official-exact metrics (``coprop.metrics``, reference/avsbench.md §1) under several
evaluation protocols side by side, because published numbers differ in exactly these choices:

S4 / MS3 (binary; J = mean IoU over annotated frames, F = mean over F-batches of the batch max-F):
    official          224x224, F-batch of 4 videos (AVSBench ``test.sh``) -> the top-level "J" and "F"
    fbatch1, fbatch2  224x224 with F-batches of 1 (AVSBench ``test.py`` default) and 2 videos
    avsegformer_512   GT and prediction nearest-resized to 512x512, F-batch 2 (AVSegFormer's dataset + config)
    native            the GT's own resolution, F-batch 4 (equals official on AVSBench, stored at 224x224)
AVSS (71-class semantic; J = mIoU over all classes, F = per-class F, per-frame averaged):
    official          224x224 (labels nearest-resized, as the AVSBench test loader does), 5-frame clips padded
                      to 10 with frames that add IoU = F = 1 to background (AVSBench / AVSegFormer)
    clean             224x224, only the real frames (COMBO-AVS)
    native            the GT's own resolution, padded

Resizing to 224 is a no-op on AVSBench S4/MS3 (stored at 224); on other trees (the 128x128 synthetic benchmark)
both GT and prediction are nearest-resized, so "native" is the protocol coprop's notebooks use there.
Every expected frame is scored: a missing, unreadable or mis-sized prediction scores as an empty prediction
(all background) and is listed with its path; files that belong to no annotated frame are listed as extra.
The Alignment Rate (paper Fig. 3) within +-k frames of a GT source conversion vs farther away is computed at
the native resolution from GT control points (``coprop.controlpoints.annotate``) wherever a clip has two or
more consecutive annotated frames.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coprop.cli_args import ArgumentParser, nonneg_int, positive_int
from coprop.data.avsbench import SPLITS, SUBSETS, open_dataset
from coprop.errors import DataError
from coprop.io import write_json, write_text
from coprop.metrics import (AVSSAccumulator, alignment_rate, binary_jaccard, fmeasure_curves,
                            fmeasure_from_curves)
from coprop.prediction_files import (Frame, clip_frames, listed_files, read_binary_prediction,
                                     read_class_prediction, to_logits)
from coprop.progress import progress

BINARY_PROTOCOLS: dict[str, dict[str, Any]] = {
    "official": dict(size=224, fbatch=4, note="AVSBench test.sh: 224x224, F-batch of 4 videos"),
    "fbatch1": dict(size=224, fbatch=1, note="AVSBench test.py default: 224x224, F-batch of 1 video"),
    "fbatch2": dict(size=224, fbatch=2, note="224x224, F-batch of 2 videos"),
    "avsegformer_512": dict(size=512, fbatch=2, note="AVSegFormer: GT and prediction nearest-resized to "
                            "512x512, F-batch of 2 videos"),
    "native": dict(size=None, fbatch=4, note="GT resolution (no resize), F-batch of 4 videos"),
}
SEMANTIC_PROTOCOLS: dict[str, dict[str, Any]] = {
    "official": dict(size=224, padded=True, note="AVSBench/AVSegFormer avss test: 224x224, 5-frame clips "
                     "padded to 10 frames (each padded frame IoU = F = 1 on background)"),
    "clean": dict(size=224, padded=False, note="COMBO-AVS: 224x224, real frames only"),
    "native": dict(size=None, padded=True, note="GT resolution (no resize), padded"),
}
PAD_TO = 10
EVAL_SHAPES = ((224, 224), (512, 512))   # prediction sizes accepted besides the GT's own
PROBLEM_KINDS = ("missing", "unreadable", "mis-sized", "extra")


def _resize(maps, shape: tuple[int, int]) -> np.ndarray:
    """Integer maps (an [N,H,W] array or a list of [h,w] maps of any sizes) as [N,*shape] int64, each map not
    already that size nearest-resized by Pillow (as AVSegFormer and the AVSS test loader resize labels)."""
    from PIL import Image

    shape = tuple(int(v) for v in shape)
    return np.stack([a if a.shape == shape else np.asarray(Image.fromarray(np.asarray(a, np.int32)).resize(
        (shape[1], shape[0]), Image.NEAREST)) for a in maps]).astype(np.int64)


def _nan_to_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x


class _Scorer:
    """Per-protocol accumulators over the clips of one split, in the split's (meta CSV) order."""

    def __init__(self, mode: str, num_classes: int, fbatch: int | None, k: int):
        self.mode, self.num_classes, self.k = mode, num_classes, k
        self.protocols = dict(BINARY_PROTOCOLS if mode == "binary" else SEMANTIC_PROTOCOLS)
        if fbatch is not None and mode == "binary" and fbatch not in (4, 1, 2):
            self.protocols[f"fbatch{fbatch}"] = dict(size=224, fbatch=fbatch, note=f"224x224, F-batch of {fbatch}")
        self.sizes = sorted({p["size"] for p in self.protocols.values()}, key=lambda s: -1 if s is None else s)
        self.ious: dict = {s: [] for s in self.sizes}
        self.curves: dict = {s: [] for s in self.sizes}
        self.accs = {n: AVSSAccumulator(num_classes) for n in self.protocols} if mode == "semantic" else {}
        self.align = Counter()
        self.has_conversions = False
        self.empty_gt = 0

    # ------------------------------------------------------------------------ one clip
    def add_binary(self, gt: np.ndarray, raw: list[np.ndarray], tops: list[int], rows: list[dict]) -> dict:
        done: dict = {}   # on AVSBench the GT is 224x224 already: 'native' reuses the 224 scores
        for s in self.sizes:
            eff = gt.shape[-2:] if s is None else (s, s)
            if eff not in done:
                g = torch.from_numpy(_resize(gt, eff)).float()
                r = _resize(raw, eff)
                lg = torch.stack([to_logits(r[j], tops[j]) for j in range(len(tops))])
                done[eff] = binary_jaccard(lg, g), fmeasure_curves(lg, g)
            ious, (curves, nonempty) = done[eff]
            self.ious[s].append(ious)
            self.curves[s].append((curves, nonempty))
            if s == 224:
                for j, row in enumerate(rows):
                    row["J"] = float(ious[j])
                    row["F"] = fmeasure_from_curves(curves[j:j + 1], nonempty[j:j + 1]) if nonempty[j] else math.nan
                clip = {"J": float(ious.double().mean()), "F": fmeasure_from_curves(curves, nonempty)}
        self._count_empty(gt, rows)
        return clip

    def _count_empty(self, gt: np.ndarray, rows: list[dict]) -> None:
        """GT frames without any sounding object (all 0: background) get IoU = TN / HW in binary J."""
        empty = gt.reshape(len(gt), -1).max(1) == 0
        self.empty_gt += int(empty.sum())
        for row, e in zip(rows, empty):
            row["gt_empty"] = bool(e)

    def add_semantic(self, gt: np.ndarray, ids: list[np.ndarray], T: int, rows: list[dict]) -> dict:
        for s in self.sizes:
            eff = gt.shape[-2:] if s is None else (s, s)
            g, p = torch.from_numpy(_resize(gt, eff)), torch.from_numpy(_resize(ids, eff))
            for name, proto in self.protocols.items():
                if proto["size"] == s:
                    self.accs[name].add_labels(p, g)
                    if proto["padded"] and T < PAD_TO:
                        self.accs[name].add_padded(PAD_TO - T)
            if s == 224:
                iou, f, counted = self.accs["official"].frame_stats(p, g)
        for j, row in enumerate(rows):
            c = counted[j]
            row["mIoU_seen"], row["F_seen"] = float(iou[j][c].mean()), float(f[j][c].mean())
            row["gt_classes"] = " ".join(str(v) for v in np.unique(gt[j]).tolist())
            row["pred_classes"] = " ".join(str(v) for v in np.unique(p[j].numpy()).tolist())
        self._count_empty(gt, rows)
        seen = counted.any(0)
        return {"mIoU_seen": float(iou[:, seen].sum(0).div(counted[:, seen].sum(0)).mean()),
                "F_seen": float(f[:, seen].sum(0).div(counted[:, seen].sum(0)).mean())}

    def add_alignment(self, T: int, frames: list[Frame], gt: np.ndarray, pred: np.ndarray, rows: list[dict]) -> dict:
        """Alignment Rate of one clip at native resolution; frames without GT are not assessed."""
        full_gt = np.zeros((T, *gt.shape[1:]), np.int64)
        full_pred = np.zeros_like(full_gt)
        avail = np.zeros(T, bool)
        for j, fr in enumerate(frames):
            full_gt[fr.t], full_pred[fr.t], avail[fr.t] = gt[j], pred[j], True
        al = alignment_rate(full_pred, full_gt, self.mode, k=self.k, gt_available=avail)
        if np.any(avail[1:] & avail[:-1]):
            self.has_conversions = True
        for row, fr in zip(rows, frames):
            row["aligned"] = al["per_frame"][fr.t]
        for key in ("all", "near", "far"):
            self.align[f"n_{key}"] += al[f"n_{key}"]
            self.align[f"aligned_{key}"] += al[f"aligned_{key}"]
        return {"alignment_all": al["all"], "alignment_near": al["near"], "alignment_far": al["far"],
                "n_near": al["n_near"], "n_far": al["n_far"]}

    # ------------------------------------------------------------------------ results
    def results(self) -> dict[str, dict]:
        out = {}
        for name, proto in self.protocols.items():
            res: dict[str, Any] = {"note": proto["note"], "size": proto["size"] or "native"}
            if self.mode == "binary":
                s, fb = proto["size"], proto["fbatch"]
                frames = torch.cat(self.ious[s]) if self.ious[s] else torch.zeros(0)
                groups = [self.curves[s][b:b + fb] for b in range(0, len(self.curves[s]), fb)]
                fs = [fmeasure_from_curves(torch.cat([c for c, _ in g]), torch.cat([e for _, e in g])) for g in groups]
                res.update(J=float(frames.double().mean()) if frames.numel() else math.nan,
                           F=float(np.mean(fs)) if fs else math.nan, fbatch=fb, f_batches=len(fs))
            else:
                acc = self.accs[name]
                miou, f = acc.result() if acc.frames else (math.nan, math.nan)
                # classes absent from every GT and prediction still count 0 in the official mean
                res.update(J=miou, mIoU=miou, F=f, padded_frames=acc.padded, num_classes=acc.num_classes,
                           classes_seen=int((acc.count > 0).sum()),
                           avss_protocol="padded" if proto["padded"] else "clean")
            out[name] = {k: _nan_to_none(v) for k, v in res.items()}
        return out

    def alignment(self) -> dict | None:
        if not self.has_conversions:
            return None
        a = self.align
        rate = {key: _nan_to_none(a[f"aligned_{key}"] / a[f"n_{key}"] if a[f"n_{key}"] else math.nan)
                for key in ("all", "near", "far")}
        return {**rate, "n_all": a["n_all"], "n_near": a["n_near"], "n_far": a["n_far"], "k": self.k,
                "note": f"share of frames whose predicted sounding object is the GT one, within +-{self.k} frames "
                        "of a GT source conversion (near) or farther (far); native resolution"}


# ---------------------------------------------------------------------------------------------- driver
def _read_gt(ds, frames: list[Frame]) -> np.ndarray:
    """GT masks [n,H,W] int64 of the clip's annotated frames, all of one size (else ``DataError``)."""
    if not frames:
        raise DataError(ds.root, "clip has no annotated frame to score", "pick a split with GT masks")
    masks = [ds.read_mask(fr.gt) for fr in frames]
    for fr, m in zip(frames, masks):
        if m.shape != masks[0].shape:
            raise DataError(fr.gt, f"GT mask size {m.shape[1]}x{m.shape[0]} differs from the clip's first mask "
                            f"{masks[0].shape[1]}x{masks[0].shape[0]}", "run coprop check-data on the dataset")
    return np.stack(masks)


def _read_predictions(frames: list[Frame], pred_dir: Path, shape: tuple[int, int], mode: str, num_classes: int):
    """(values: n maps [h,w] int64, tops) for the clip's frames; a bad or absent file gives zeros and a status.

    A map is taken at the GT size or at an evaluation size (224x224, 512x512: what models output); any other
    size is mis-sized.
    """
    vals, tops = [np.zeros(shape, np.int64) for _ in frames], [1] * len(frames)
    for j, fr in enumerate(frames):
        path = pred_dir / fr.rel
        if not path.is_file():
            continue
        try:
            if mode == "binary":
                v, top, fr.format = read_binary_prediction(path)
            else:
                (v, fr.format), top = read_class_prediction(path, num_classes), 1
        except DataError as e:
            fr.status, fr.detail = "unreadable", e.problem
            continue
        if v.shape != shape and v.shape not in EVAL_SHAPES:
            fr.status, fr.detail = "mis-sized", (f"{v.shape[1]}x{v.shape[0]}, expected {shape[1]}x{shape[0]} "
                                                 "(GT size), 224x224 or 512x512")
            continue
        if v.shape != shape:
            fr.detail = f"stored at {v.shape[1]}x{v.shape[0]}, nearest-resized where a protocol needs another size"
        vals[j], tops[j], fr.status = v, top, "ok"
    return vals, tops


def evaluate(pred_dir: str | Path, data_root: str | Path, subset: str, split: str, out: str | Path | None = None,
             *, fbatch: int | None = None, k: int = 1, show_progress: bool = True) -> dict[str, Any]:
    """Score the PNG masks under ``pred_dir`` against ``subset``/``split`` of the AVSBench-layout tree ``data_root``.

    Layout and accepted PNG formats: ``coprop.prediction_files``; protocols: this module's docstring.
    ``fbatch`` adds a protocol with that F-batch size (S4/MS3); ``k``: frames either side of a GT source
    conversion counted as "near" for the Alignment Rate. Returns the summary dict (J and F as fractions);
    with ``out``, also writes ``summary.json``, ``clips.csv``, ``frames.csv`` and ``problems.csv`` there.
    Raises ``DataError`` if ``pred_dir`` or the dataset cannot be opened; a clip whose GT is broken is
    listed under ``gt_errors`` and not scored.
    """
    import pandas as pd

    t0 = time.perf_counter()
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "prediction folder does not exist", "pass the folder holding the predicted PNGs")
    ds = open_dataset(data_root, subset, split, strict=True)
    if len(ds) == 0:
        raise DataError(ds.root, f"no clips of split {split!r} in the {subset} meta CSV", f"use one of {SPLITS}")
    scorer = _Scorer(ds.mode, ds.num_classes, fbatch, k)
    clip_rows, frame_rows, gt_errors, expected = [], [], [], set()
    for i in progress(range(len(ds)), desc=f"evaluate {subset} {split}", disable=not show_progress, unit="clip"):
        plan, frames = clip_frames(ds, i)
        expected |= {fr.rel for fr in frames}
        try:
            if plan.problems:
                raise plan.problems[0]
            gt = _read_gt(ds, frames)
        except DataError as e:
            gt_errors.append({"clip": ds.names[i], "error": str(e)})
            continue
        vals, tops = _read_predictions(frames, pred_dir, gt.shape[1:], ds.mode, ds.num_classes)
        rows = [{"clip": fr.clip, "frame": fr.t, "path": fr.rel} for fr in frames]
        if ds.mode == "binary":
            scores = scorer.add_binary(gt, vals, tops, rows)
            # the J rule (sigmoid > 0.5) decides what the alignment rate sees as predicted foreground
            native = _resize(vals, gt.shape[1:])
            pred = np.stack([(torch.sigmoid(to_logits(v, top)) > 0.5).numpy() for v, top in zip(native, tops)])
        else:
            scores = scorer.add_semantic(gt, vals, len(plan.masks), rows)
            pred = _resize(vals, gt.shape[1:])
        scores.update(scorer.add_alignment(len(plan.masks), frames, gt, pred, rows))
        for row, fr in zip(rows, frames):
            row.update(status=fr.status, format=fr.format, detail=fr.detail)
        frame_rows += rows
        status = Counter(fr.status for fr in frames)
        clip_rows.append({"clip": ds.names[i], "category": ds.category(i), "frames": len(plan.masks),
                          "annotated": len(frames), **{s: status.get(s, 0) for s in ("ok", *PROBLEM_KINDS[:3])},
                          **scores})
    extra = sorted(listed_files(pred_dir) - expected)
    problems = [{"kind": r["status"], "path": str(pred_dir / r["path"]), "detail": r["detail"]}
                for r in frame_rows if r["status"] != "ok"]
    problems += [{"kind": "extra", "path": str(pred_dir / p), "detail": "no annotated frame of this split has "
                  "this path"} for p in extra]
    protocols = scorer.results()
    summary: dict[str, Any] = {
        "J": protocols["official"]["J"], "F": protocols["official"]["F"], "protocol": "official",
        "protocols": protocols, "subset": subset, "split": split, "pred_dir": str(pred_dir),
        "data_root": str(data_root), "clips": len(clip_rows), "frames": len(frame_rows),
        "predictions": {"expected": len(frame_rows), **{kind: sum(p["kind"] == kind for p in problems)
                                                         for kind in PROBLEM_KINDS},
                        "ok": sum(r["status"] == "ok" for r in frame_rows),
                        "formats": dict(Counter(r["format"] for r in frame_rows if r["format"]))},
        "problems": {kind: [p["path"] + (f" ({p['detail']})" if p["detail"] and kind != "extra" else "")
                            for p in problems if p["kind"] == kind] for kind in PROBLEM_KINDS},
        "gt_errors": gt_errors, "alignment": scorer.alignment(),
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    summary.update(empty_gt_frames=scorer.empty_gt,
                   empty_gt_share=scorer.empty_gt / len(frame_rows) if frame_rows else None)
    if ds.mode == "semantic":
        summary["mIoU"] = summary["J"]
    if out is not None:
        out = Path(out)
        write_json(out / "summary.json", summary)
        write_text(out / "clips.csv", pd.DataFrame(clip_rows).to_csv(index=False))
        write_text(out / "frames.csv", pd.DataFrame(frame_rows).to_csv(index=False))
        write_text(out / "problems.csv", pd.DataFrame(problems, columns=["kind", "path", "detail"]).to_csv(index=False))
    return summary


def _fmt(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def cli(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="coprop evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("pred_dir", help="folder of predicted PNGs at the GT masks' relative paths (see coprop.prediction_files)")
    ap.add_argument("--data-root", required=True, help="AVSBench folder (or one subset folder) holding the GT")
    ap.add_argument("--subset", required=True, choices=SUBSETS)
    ap.add_argument("--split", required=True, choices=SPLITS)
    ap.add_argument("--out", required=True, help="folder for summary.json, clips.csv, frames.csv, problems.csv")
    ap.add_argument("--fbatch", type=positive_int, default=None, help="also report this F-batch size (S4/MS3)")
    ap.add_argument("--alignment-k", type=nonneg_int, default=1,
                    help="frames either side of a GT source conversion that count as near (default 1)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when any prediction file is missing, extra, "
                    "unreadable or mis-sized")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    s = evaluate(a.pred_dir, a.data_root, a.subset, a.split, a.out, fbatch=a.fbatch, k=a.alignment_k,
                 show_progress=not a.no_progress)
    print(f"{a.subset} {a.split}: {s['clips']} clips, {s['frames']} annotated frames, {s['wall_s']:.1f} s")
    for name, p in s["protocols"].items():
        extra = f"F-batch {p['fbatch']}" if "fbatch" in p else p["avss_protocol"]
        print(f"  {name:<16} J {_fmt(p['J'])}  F {_fmt(p['F'])}  ({p['size']}, {extra})")
    if s["alignment"]:
        al = s["alignment"]
        print(f"  alignment rate  all {_fmt(al['all'])}  near {_fmt(al['near'])} ({al['n_near']} frames)  "
              f"far {_fmt(al['far'])} ({al['n_far']} frames)")
    n_bad = 0
    for kind, paths in s["problems"].items():
        n_bad += len(paths)
        for p in paths[:5]:
            print(f"  {kind}: {p}")
        if len(paths) > 5:
            print(f"  ... {len(paths) - 5} more {kind} files")
    for e in s["gt_errors"]:
        print(f"  GT error, clip {e['clip']} not scored: {e['error']}")
    print(f"wrote {Path(a.out) / 'summary.json'}, clips.csv, frames.csv, problems.csv ({n_bad} prediction problem(s))")
    return 1 if s["gt_errors"] or (a.strict and n_bad) else 0
