"""Pictures of the pipeline's stages: mask overlays, audio, control-point timelines, per-frame J, alignment.

Every plotting function returns a matplotlib Figure (and accepts ``ax`` where a single panel makes sense) so
notebooks can both show it and hand it to ``RunOutput.figure``. Inputs are plain arrays (numpy or torch).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

# Category colours: background transparent, then a qualitative palette that stays readable over photos.
_BASE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
    [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180],
    [0, 0, 128], [128, 128, 128]], dtype=np.uint8)
OK_COLOR, MISS_COLOR, EMPTY_COLOR = "#3cb44b", "#e6194b", "#d9d9d9"
BINARY_COLOR = (0, 235, 255)   # cyan: rare in natural and synthetic scenes, so the mask reads as a mask


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def class_color(class_id: int) -> np.ndarray:
    return _BASE[(int(class_id) - 1) % len(_BASE)]


def logits_to_masks(logits) -> np.ndarray:
    """[T,1,H,W] binary logits -> {0,1}; [T,K,H,W] semantic logits -> argmax class ids. Masks pass through."""
    a = _np(logits)
    if a.ndim == 3:
        return a.astype(np.int64)
    if a.ndim != 4:
        raise ValueError(f"expected logits [T,K,H,W] or masks [T,H,W], got shape {a.shape}")
    if a.shape[1] == 1:
        return (a[:, 0] > 0).astype(np.int64)
    return a.argmax(1).astype(np.int64)


def _resize_nearest(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if mask.shape == hw:
        return mask
    ys = (np.arange(hw[0]) * mask.shape[0] / hw[0]).astype(int)
    xs = (np.arange(hw[1]) * mask.shape[1] / hw[1]).astype(int)
    return mask[ys][:, xs]


def overlay(frame, mask, alpha: float = 0.5, color=None, outline: bool = True) -> np.ndarray:
    """Blend ``mask`` ([H,W] ints: 0 background, >0 object / class id) over an RGB uint8 frame."""
    img = _np(frame).astype(np.float32).copy()
    m = _resize_nearest(_np(mask).astype(np.int64), img.shape[:2])
    if color is None and m.max(initial=0) == 1:
        color = BINARY_COLOR
    for cid in np.unique(m):
        if cid == 0:
            continue
        sel = m == cid
        c = np.asarray(color if color is not None else class_color(cid), dtype=np.float32)
        img[sel] = (1 - alpha) * img[sel] + alpha * c
        if outline:
            edge = sel & ~(np.roll(sel, 1, 0) & np.roll(sel, -1, 0) & np.roll(sel, 1, 1) & np.roll(sel, -1, 1))
            img[edge] = c
    return img.clip(0, 255).astype(np.uint8)


def mask_grid(frames, rows: Mapping[str, object], frame_idx: Sequence[int] | None = None,
              titles: Sequence[str] | None = None, max_cols: int = 10, cell: float = 1.6):
    """Frames (columns) x methods (rows): each cell is the frame with that method's mask overlaid.

    ``rows`` maps a row label ('GT', 'baseline', 'Co-Prop', ...) to masks [T,H,W] or logits [T,K,H,W];
    ``None`` draws the bare frame.
    """
    import matplotlib.pyplot as plt

    frames = _np(frames)
    T = len(frames)
    idx = list(frame_idx) if frame_idx is not None else list(np.linspace(0, T - 1, min(T, max_cols)).astype(int))
    masks = {k: (None if v is None else logits_to_masks(v)) for k, v in rows.items()}
    fig, axes = plt.subplots(len(masks), len(idx), figsize=(cell * len(idx), cell * len(masks)), squeeze=False)
    for r, (label, m) in enumerate(masks.items()):
        for c, t in enumerate(idx):
            ax = axes[r, c]
            ax.imshow(frames[t] if m is None else overlay(frames[t], m[t]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c] if titles else f"t={t}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def audio_panels(waveform, logmel, frame_times=None, sr: int = 16000, control_points: Sequence[int] | None = None,
                 sounding: Sequence[object] | None = None):
    """Waveform over time with frame instants, and the per-frame log-mel examples side by side."""
    import matplotlib.pyplot as plt

    w = _np(waveform).astype(np.float32)
    lm = _np(logmel)
    lm = lm.reshape(-1, lm.shape[-2], lm.shape[-1])          # [T,96,64]
    fig, (a0, a1) = plt.subplots(2, 1, figsize=(10, 4.2), gridspec_kw={"height_ratios": [1, 1.3]})
    t = np.arange(len(w)) / sr
    a0.plot(t, w, lw=0.4, color="#333")
    a0.set_xlim(0, max(t[-1] if len(t) else 1.0, 1e-3))
    a0.set_ylabel("amplitude")
    if frame_times is not None:
        for k, ft in enumerate(_np(frame_times)):
            a0.axvline(ft, color="#0082c8", lw=0.8, alpha=0.6)
            if control_points is not None and k < len(control_points) and control_points[k]:
                a0.axvline(ft, color=MISS_COLOR, lw=2)
            if sounding is not None and k < len(sounding):
                a0.text(ft, a0.get_ylim()[1], _label(sounding[k]), fontsize=7, rotation=30, ha="left", va="bottom")
    a0.set_xlabel("seconds (blue: frame instants, red: control points)")
    a1.imshow(np.concatenate(list(lm), axis=0).T, origin="lower", aspect="auto", cmap="magma")
    for k in range(1, len(lm)):
        a1.axvline(k * lm.shape[1] - 0.5, color="w", lw=0.8)
    a1.set_xticks([(k + 0.5) * lm.shape[1] for k in range(len(lm))], [str(k) for k in range(len(lm))])
    a1.set_xlabel("frame (one 0.96 s log-mel example each)")
    a1.set_ylabel("mel band")
    fig.tight_layout()
    return fig


def _label(x) -> str:
    if isinstance(x, (list, tuple, set, frozenset)):
        return "+".join(sorted(str(v) for v in x)) or "silence"
    return str(x)


def control_point_timeline(sources: Mapping[str, Sequence[int]], ax=None, title: str = ""):
    """One row per control-point source, a mark at every control point; segments shaded alternately."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(sources) + 0.9))
    names = list(sources)
    for r, name in enumerate(names):
        cp = list(sources[name])
        starts = [t for t, v in enumerate(cp) if v] + [len(cp)]
        for s, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
            ax.add_patch(plt.Rectangle((a - 0.5, r - 0.4), b - a, 0.8, color="#0082c8" if s % 2 else "#9bd0f0"))
        ax.scatter([t for t, v in enumerate(cp) if v], [r] * sum(1 for v in cp if v), marker="|", s=300,
                   color="k", zorder=3)
    T = max((len(v) for v in sources.values()), default=1)
    integer_frame_axis(ax, T)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("frame (| = control point, colour = segment)")
    if title:
        ax.set_title(title)
    if fig is None:
        return ax.figure   # the caller owns the layout of a figure it passed an axis of
    fig.tight_layout()
    return fig


def segment_lengths(control_points: Sequence[int]) -> list[int]:
    starts = [t for t, v in enumerate(control_points) if v] + [len(control_points)]
    return [b - a for a, b in zip(starts[:-1], starts[1:])]


def segment_length_hist(lists: Mapping[str, Sequence[Sequence[int]]], ax=None):
    """Histogram of segment lengths (frames between control points) for each source over many clips."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3))
    lengths = {k: [n for cp in v for n in segment_lengths(cp)] for k, v in lists.items()}
    top = max((max(v) for v in lengths.values() if v), default=1)
    bins = np.arange(0.5, top + 1.5)
    for name, ls in lengths.items():
        ax.hist(ls, bins=bins, alpha=0.55, label=f"{name} (n={len(ls)})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("segment length (frames)")
    ax.set_ylabel("segments (count)")
    ax.legend(fontsize=8)
    if fig is None:
        return ax.figure   # the caller owns the layout of a figure it passed an axis of
    fig.tight_layout()
    return fig


def j_per_frame(j: Mapping[str, Sequence[float]], control_points: Sequence[int] | None = None, ax=None,
                title: str = "per-frame J"):
    """A line per method, J in % (``j`` holds fractions in [0, 1]; NaN where a frame has no GT); control points
    drawn as dotted vertical lines (where keyframes are re-segmented). Legend to the right, off the data."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 2.8))
    T = 1
    for name, vals in j.items():
        v = 100 * _np(vals).astype(float)
        T = max(T, len(v))
        ax.plot(np.arange(len(v)), v, marker="o", ms=3, lw=1.2, label=name)
    if control_points is not None:
        for t, c in enumerate(control_points):
            if c:
                ax.axvline(t, color="k", lw=0.8, ls=":")
    ax.set_ylim(-2, 102)
    integer_frame_axis(ax, T)
    ax.set_xlabel("frame (dotted: control points)")
    ax.set_ylabel("J (%)")
    if title:
        ax.set_title(title)
    legend_outside(ax)
    if fig is None:
        return ax.figure   # the caller owns the layout of a figure it passed an axis of
    fig.tight_layout()
    return fig


def integer_frame_axis(ax, num_frames: int) -> None:
    """Frame ticks on whole frames only (at most ~20 labels), limits half a frame beyond the ends."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=min(20, max(1, num_frames)), integer=True))
    ax.set_xlim(-0.5, num_frames - 0.5)


def legend_outside(ax, fontsize: int = 8) -> None:
    """The legend to the right of the axes, where it cannot cover bars or lines."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def alignment_timeline(labels: Mapping[str, Sequence[object]], gt: Sequence[object],
                       aligned: Mapping[str, Sequence[bool]] | None = None,
                       control_points: Sequence[int] | None = None, title: str = ""):
    """Which object each method segments in each frame, against GT.

    ``labels[method][t]`` and ``gt[t]`` name the segmented / sounding object (a string or a set of names);
    a cell is green where it matches GT (or where ``aligned`` says so), red otherwise, grey where GT is empty.
    """
    import matplotlib.pyplot as plt

    rows = {"GT": list(gt), **{k: list(v) for k, v in labels.items()}}
    T = len(gt)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * T), 0.5 * len(rows) + 1.0))
    for r, (name, lab) in enumerate(rows.items()):
        for t in range(T):
            if name == "GT":
                col = "#ffffff"
            elif aligned is not None and name in aligned:
                col = OK_COLOR if aligned[name][t] else MISS_COLOR
            else:
                col = OK_COLOR if _label(lab[t]) == _label(gt[t]) else MISS_COLOR
            ax.add_patch(plt.Rectangle((t - 0.5, r - 0.45), 1, 0.9, color=col, ec="w"))
            ax.text(t, r, _label(lab[t]), ha="center", va="center", fontsize=6.5)
    if control_points is not None:
        for t, c in enumerate(control_points):
            if c and t:
                ax.axvline(t - 0.5, color="k", lw=1.5)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xticks(range(T))
    ax.set_xlabel("frame (green: segments the GT sounding object; red: not; black line: GT source conversion)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def grouped_bars(df, x: str, y: str, hue: str, yerr: str | tuple[str, str] | None = None, ax=None, title: str = "",
                 highlight: str | None = None, ylabel: str | None = None):
    """Bars of ``y`` for each ``x`` group, one colour per ``hue`` (paper Fig. 3 / Fig. 4 layouts).

    ``yerr``: a column of symmetric errors (e.g. a std), or a (lower, upper) pair of interval-bound columns.
    ``ylabel`` names the metric and its unit (default: the column name); the legend sits right of the axes."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.2))
    xs = list(dict.fromkeys(df[x]))
    hues = list(dict.fromkeys(df[hue]))
    width = 0.8 / max(1, len(hues))
    for i, h in enumerate(hues):
        sub = df[df[hue] == h].set_index(x)
        vals = [float(sub[y].get(k, np.nan)) if k in sub.index else np.nan for k in xs]
        err = None
        if isinstance(yerr, tuple):   # (lower bound column, upper bound column): an interval, drawn asymmetric
            lo = [float(sub[yerr[0]].get(k, np.nan)) if k in sub.index else np.nan for k in xs]
            hi = [float(sub[yerr[1]].get(k, np.nan)) if k in sub.index else np.nan for k in xs]
            err = np.nan_to_num(np.array([np.subtract(vals, lo), np.subtract(hi, vals)]).clip(min=0))
        elif yerr:
            err = [float(sub[yerr].get(k, 0)) if k in sub.index else 0 for k in xs]
        color = "#f58fb0" if highlight is not None and h == highlight else None
        ax.bar(np.arange(len(xs)) + (i - (len(hues) - 1) / 2) * width, vals, width, yerr=err, label=str(h),
               color=color, capsize=2)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    legend_outside(ax)
    if fig is None:
        return ax.figure   # the caller owns the layout of a figure it passed an axis of
    fig.tight_layout()
    return fig
