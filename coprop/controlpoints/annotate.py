"""Control points from GT masks (paper A.1), the keyframe subset, the MOC selection and Table 3 statistics.

Frame t >= 1 is a control point when the sounding object changes from t-1:
- semantic masks: the set of classes (background excluded) covering more than ``area_floor`` of the frame
  differs between t-1 and t;
- binary masks: emptiness flips (a mask covering <= ``area_floor`` of the frame counts as empty), or both are
  non-empty and IoU(mask_t, mask_{t-1}) < ``iou_threshold`` (default 0.5: the sounding region moved to a
  different object or an object joined/left that is at least as large as the rest).
``c[0] = 1`` always. Frames without GT are never control points and are not compared: only *consecutive*
annotated frames (t-1 and t both annotated) are compared, so on S4 train (frame 0 annotated only) the list is
[1, 0, 0, 0, 0].

``AREA_FLOOR = 0.001`` of the frame (about 50 pixels at 224x224, 16 at 128x128) keeps a few stray pixels of a
mask from making up a class or a non-empty frame.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from coprop.errors import DataError

AREA_FLOOR = 0.001
IOU_THRESHOLD = 0.5


def class_set(mask: np.ndarray, area_floor: float = AREA_FLOOR) -> frozenset[int]:
    """Non-background class ids covering more than ``area_floor`` of the frame."""
    ids, counts = np.unique(np.asarray(mask), return_counts=True)
    floor = area_floor * np.asarray(mask).size
    return frozenset(int(i) for i, c in zip(ids, counts) if i != 0 and c > floor)


def _binary_changed(a: np.ndarray, b: np.ndarray, iou_threshold: float, area_floor: float) -> bool:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    floor = area_floor * a.size
    ea, eb = a.sum() <= floor, b.sum() <= floor
    if ea or eb:
        return bool(ea != eb)
    return bool((a & b).sum() / (a | b).sum() < iou_threshold)


def control_points_from_masks(masks, mode: str, iou_threshold: float = IOU_THRESHOLD,
                              area_floor: float = AREA_FLOOR, gt_available=None) -> list[int]:
    """T-long 0/1 list from GT masks [T,H,W] (binary {0,1} or class ids); see the module doc for the rule."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [T,H,W], got shape {masks.shape}")
    if mode not in ("binary", "semantic"):
        raise ValueError(f"mode must be 'binary' or 'semantic', got {mode!r}")
    T = masks.shape[0]
    avail = np.ones(T, bool) if gt_available is None else np.asarray(gt_available, bool)
    if avail.shape != (T,):
        raise ValueError(f"gt_available has {avail.size} entries for {T} frames")
    c = [1] + [0] * (T - 1) if T else []
    for t in range(1, T):
        if not (avail[t] and avail[t - 1]):
            continue
        if mode == "semantic":
            changed = class_set(masks[t], area_floor) != class_set(masks[t - 1], area_floor)
        else:
            changed = _binary_changed(masks[t], masks[t - 1], iou_threshold, area_floor)
        c[t] = int(changed)
    return c


def control_points_from_sounding(sounding: Sequence[Sequence[str]]) -> list[int]:
    """From per-frame lists of sounding category names (synthetic ``meta['sounding']``): the set changes."""
    sets = [frozenset(s) for s in sounding]
    return [1] + [int(sets[t] != sets[t - 1]) for t in range(1, len(sets))] if sets else []


def clip_control_points(clip, source: str = "masks", iou_threshold: float = IOU_THRESHOLD,
                        area_floor: float = AREA_FLOOR) -> list[int]:
    """GT control points of a :class:`~coprop.data.clip.Clip`.

    source 'masks' applies the rule to ``clip.masks`` (semantic rule for semantic clips, binary otherwise);
    'meta' uses the synthetic ground truth ``meta['sounding']`` (exact, independent of mask geometry).
    """
    if source == "meta":
        if "sounding" not in clip.meta:
            raise DataError(clip.meta.get("source"), f"clip {clip.name} has no meta['sounding']",
                            "source='meta' needs the synthetic benchmark; use source='masks'")
        return control_points_from_sounding(clip.meta["sounding"])
    if source != "masks":
        raise ValueError(f"source must be 'masks' or 'meta', got {source!r}")
    if clip.masks is None:
        raise DataError(clip.meta.get("source"), f"clip {clip.name} has no GT masks",
                        "GT control points need an annotated split (train/val/test of AVSBench)")
    return control_points_from_masks(clip.masks, clip.mode, iou_threshold, area_floor, clip.gt_available)


def keyframe_subset(clips: Iterable, source: str | Callable[[Any], Sequence[int]] = "gt") -> list[tuple[int, int]]:
    """(clip index, frame index) of every keyframe (c = 1) that has a GT mask: the fine-tuning set of the
    Keyframe Processor (paper 3.3). ``source``: 'gt' (masks rule), 'meta' (synthetic truth) or any callable
    ``clip -> list[int]`` (e.g. a control-point source from ``coprop.controlpoints.detectors``).
    """
    if source == "gt":
        fn = clip_control_points
    elif source == "meta":
        def fn(clip):
            return clip_control_points(clip, source="meta")
    elif callable(source):
        fn = source
    else:
        raise ValueError(f"source must be 'gt', 'meta' or a callable, got {source!r}")
    out = []
    for i, clip in enumerate(clips):
        c = list(fn(clip))
        if len(c) != clip.num_frames:
            raise ValueError(f"control-point source gave {len(c)} values for clip {clip.name} "
                             f"of {clip.num_frames} frames")
        avail = clip.gt_available if clip.gt_available is not None else np.ones(clip.num_frames, bool)
        out += [(i, t) for t in range(clip.num_frames) if c[t] and avail[t]]
    return out


def moc_selection(clips: Iterable, source: str = "masks") -> list[int]:
    """Indices of the clips whose GT control points hold a change after frame 0 (the paper's MOC set)."""
    return [i for i, clip in enumerate(clips) if any(clip_control_points(clip, source)[1:])]


def clip_categories(clip, area_floor: float = AREA_FLOOR) -> int:
    """Distinct sounding categories of a clip: class ids for semantic masks; ``meta['sounding']`` names for
    binary clips when present; otherwise the number of GT segments (sum of control points)."""
    if clip.mode == "semantic" and clip.masks is not None:
        seen: set[int] = set()
        for t in np.flatnonzero(clip.gt_available):
            seen |= class_set(clip.masks[t], area_floor)
        return len(seen)
    if "sounding" in clip.meta:
        return len({name for frame in clip.meta["sounding"] for name in frame})
    return int(sum(clip_control_points(clip, area_floor=area_floor)))


def frame_labels(clip, class_names: Sequence[str] | None = None, area_floor: float = AREA_FLOOR) -> list[str | None]:
    """What sounds in each frame, as text: synthetic ``meta['sounding']`` names joined by '+', else the class
    names of a semantic mask, else 'sounding' / 'silence' from a binary mask; 'silence' when nothing sounds and
    None for a frame without GT (and no synthetic truth)."""
    if "sounding" in clip.meta:
        return ["+".join(sorted(s)) or "silence" for s in clip.meta["sounding"]]
    out: list[str | None] = []
    for t in range(clip.num_frames):
        if clip.masks is None or not clip.gt_available[t]:
            out.append(None)
        elif clip.mode == "semantic":
            ids = sorted(class_set(clip.masks[t], area_floor))
            names = [class_names[i] if class_names is not None and i < len(class_names) else str(i) for i in ids]
            out.append("+".join(names) or "silence")
        else:
            out.append("sounding" if (np.asarray(clip.masks[t]) > 0).sum() > area_floor * clip.masks[t].size
                       else "silence")
    return out


def clip_records(clips: Iterable, source: str = "masks", iou_threshold: float = IOU_THRESHOLD,
                 area_floor: float = AREA_FLOOR, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One light record per clip (clips are decoded one at a time, so a whole AVSBench split fits):
    name, frames, control_points (GT rule), categories (:func:`clip_categories`), change (a control point
    after frame 0), labels (:func:`frame_labels`) and, for synthetic clips, control_points_meta (exact truth).
    """
    if class_names is None:
        class_names = getattr(clips, "class_names", None)
    out = []
    for clip in clips:
        cp = clip_control_points(clip, source, iou_threshold, area_floor)
        rec = {"clip": clip.name, "frames": clip.num_frames, "control_points": cp,
               "categories": clip_categories(clip, area_floor), "change": any(cp[1:]),
               "labels": frame_labels(clip, class_names, area_floor)}
        if "sounding" in clip.meta:
            rec["control_points_meta"] = control_points_from_sounding(clip.meta["sounding"])
            rec["sounding"] = [sorted(s) for s in clip.meta["sounding"]]
        if "events" in clip.meta:
            rec["events"] = clip.meta["events"]
        out.append(rec)
    return out


def table3_from_records(records: dict[str, list[dict[str, Any]]]):
    """Table 3 (Videos, Avg.Cate, Category Changes %) from :func:`clip_records` output, one row per name."""
    import pandas as pd

    rows = []
    for name, recs in records.items():
        n = len(recs)
        rows.append({"Dataset": name, "Videos": n,
                     "Avg.Cate": float(np.mean([r["categories"] for r in recs])) if n else float("nan"),
                     "Category Changes (%)": 100.0 * float(np.mean([r["change"] for r in recs])) if n
                     else float("nan")})
    return pd.DataFrame(rows)


def audio_window_table(records: dict[str, list[dict[str, Any]]], k: int = 1):
    """Synthetic data only (records with ``events``): how often a frame's 0.96 s audio window holds two sounding
    states, and how often the state filling most of the window is not the frame's GT, for frames within +-k of
    a GT control point ('near') and the rest ('far'). This is the misalignment the benchmark is built to show.
    """
    import pandas as pd

    from coprop.data.synth import audio_windows

    rows = []
    for name, recs in records.items():
        counts = {w: [0, 0, 0] for w in ("near", "far")}  # frames, mixed, dominant != GT
        for r in recs:
            if "events" not in r or "sounding" not in r:
                continue
            T = r["frames"]
            near = np.zeros(T, bool)
            for t in range(1, T):
                if r["control_points"][t]:
                    near[max(0, t - k):t + k + 1] = True
            for t, w in enumerate(audio_windows(r["events"], T)):
                c = counts["near" if near[t] else "far"]
                c[0] += 1
                c[1] += w["mixed"]
                c[2] += w["dominant"] != r["sounding"][t]
        if counts["near"][0] + counts["far"][0] == 0:
            continue
        row = {"Dataset": name}
        for where, (n, mixed, wrong) in counts.items():
            row[f"{where} frames"] = n
            row[f"{where}: window holds 2 states (%)"] = 100.0 * mixed / n if n else float("nan")
            row[f"{where}: window's main source != GT (%)"] = 100.0 * wrong / n if n else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def table3_stats(datasets: dict[str, Iterable], source: str = "masks", area_floor: float = AREA_FLOOR):
    """Paper Table 3 for each named set of clips: Videos, Avg.Cate (mean distinct sounding categories per
    video, see :func:`clip_categories`) and Category Changes (% of videos with a control point after frame 0).
    """
    return table3_from_records({name: clip_records(clips, source, area_floor=area_floor)
                                for name, clips in datasets.items()})


def segment_lengths(control_points: Sequence[int]) -> list[int]:
    """Lengths (frames) of the segments a control-point list cuts a clip into."""
    starts = [t for t, c in enumerate(control_points) if c or t == 0]
    return [b - a for a, b in zip(starts, starts[1:] + [len(control_points)])]
