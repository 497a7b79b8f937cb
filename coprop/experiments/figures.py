"""The paper's figures from evaluations: Fig. 3 (Alignment Rate), Fig. 4 (plug-and-play), per-clip alignment
timelines, and several figures stacked into one image."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from coprop.experiments.alignment import frame_objects
from coprop.experiments.evaluation import Evaluation
from coprop.experiments.methods import Method
from coprop.experiments.scoring import aligned_frames
from coprop.experiments.tables import table1


def fig4(ev: Evaluation):
    """Paper Fig. 4 layout: J and F (%) of the baseline alone and with Co-Prop around it (pink), plus Co-Prop.
    Error bars: the interval columns (``ours: J %_lo`` / ``_hi``) when Table 1 has them, else the std over seeds."""
    from coprop.viz import grouped_bars

    t = table1(ev)
    parts = []
    for m in ("J", "F"):
        col = f"ours: {m} %"
        part = pd.DataFrame({"metric": f"{m} (%)", "method": t["method"], "value": t[col]})
        if f"{col}_lo" in t.columns and f"{col}_hi" in t.columns:
            part["lo"], part["hi"] = t[f"{col}_lo"], t[f"{col}_hi"]
        elif f"ours: {m} std" in t.columns:
            part["std"] = t[f"ours: {m} std"].fillna(0)
        parts.append(part)
    long = pd.concat(parts)
    yerr = ("lo", "hi") if "lo" in long.columns else ("std" if "std" in long.columns else None)
    return grouped_bars(long, "metric", "value", "method", yerr=yerr, highlight=t["method"].iloc[2],
                        ylabel="score on the test clips (%)",
                        title=f"Plug-and-play (paper Fig. 4 layout) -- {ev.data_label}")


def timeline_figure(ev: Evaluation, methods: Sequence[Method], clip, tau: float = 0.5):
    """Alignment timeline of one clip: which object each method segments per frame, against GT."""
    from coprop.viz import alignment_timeline

    labels, aligned, gt = {}, {}, None
    for m in methods:
        if not ev.available(m):
            continue
        r = ev.result(m, clip.name)
        gt, labels[m.label] = frame_objects(r, clip, tau)
        aligned[m.label] = [bool(a) for a in aligned_frames(r, clip, tau)]
    from coprop.controlpoints.annotate import clip_control_points

    return alignment_timeline(labels, gt, aligned, clip_control_points(clip), title=clip.name)


def fig3(rates: pd.DataFrame, k: int, title: str = ""):
    """Paper Fig. 3 layout: Alignment Rate per method on MOC-style clips, near and far from conversions."""
    from coprop.viz import grouped_bars

    allc = rates["clips"] == "all test clips"
    parts = [("near a conversion (±%d)" % k, f"AR within ±{k} of a conversion %", allc),
             ("farther", "AR farther %", allc), ("all frames", "AR all %", allc)]
    moc = rates["clips"].str.startswith("MOC")
    if moc.any():
        parts.insert(0, ("MOC-style clips", "AR all %", moc))
    long = pd.concat([pd.DataFrame({"frames": name, "method": rates["method"][sel], "value": rates[col][sel]})
                      for name, col, sel in parts])
    return grouped_bars(long, "frames", "value", "method", title=title, ylabel="Alignment Rate (%)")


def stack_figures(figs: list):
    """Several figures as one image (for one PNG in the report)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    imgs = []
    for f in figs:
        buf = io.BytesIO()
        f.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(f)
        imgs.append(np.asarray(Image.open(buf).convert("RGB")))
    W = max(i.shape[1] for i in imgs)
    canvas = np.full((sum(i.shape[0] for i in imgs), W, 3), 255, np.uint8)
    y = 0
    for i in imgs:
        canvas[y:y + i.shape[0], :i.shape[1]] = i
        y += i.shape[0]
    fig = plt.figure(figsize=(W / 100, canvas.shape[0] / 100), dpi=100)
    fig.figimage(canvas)
    return fig
