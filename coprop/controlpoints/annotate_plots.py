"""Pictures of GT control points over a dataset: a clips x frames raster coloured by what sounds."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

_SPECIAL = {"silence": "#f0f0f0", None: "#ffffff"}
_MULTI_EDGE = "#222222"


def _palette(labels: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def control_point_raster(records: Sequence[dict[str, Any]], title: str = "", max_clips: int | None = None):
    """One row per clip (a :func:`coprop.controlpoints.annotate.clip_records` record), one cell per frame,
    coloured by the sounding category; a cell where two or more categories sound is drawn in the colour of
    the first with a dark hatched edge; 'silence' is light grey, frames without GT white. A black bar marks
    every control point after frame 0.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    recs = list(records)[:max_clips] if max_clips else list(records)
    T = max((r["frames"] for r in recs), default=1)
    singles = sorted({part for r in recs for lab in r["labels"] if lab and lab != "silence"
                      for part in lab.split("+")})
    colours = _palette(singles)
    width = min(14.0, 2.5 + 0.35 * T)
    fig, ax = plt.subplots(figsize=(width, 0.9 + 0.22 * max(1, len(recs))))
    for row, rec in enumerate(recs):
        for t, lab in enumerate(rec["labels"]):
            parts = lab.split("+") if lab and lab != "silence" else []
            face = colours[parts[0]] if parts else _SPECIAL[lab]
            ax.add_patch(Rectangle((t - 0.5, row - 0.45), 1, 0.9, facecolor=face, linewidth=0.8 if parts[1:] else 0,
                                   edgecolor=_MULTI_EDGE, hatch="//" if parts[1:] else None))
        cps = [t for t, c in enumerate(rec["control_points"]) if c and t > 0]
        ax.vlines(np.asarray(cps) - 0.5, row - 0.5, row + 0.5, colors="k", linewidth=2.2)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(len(recs) - 0.5, -0.5)
    ax.set_yticks(range(len(recs)), [r["clip"] for r in recs], fontsize=6 if len(recs) > 20 else 8)
    ax.set_xlabel("frame  (black bar = GT control point: the sounding object changes here)")
    handles = [Patch(facecolor=colours[c], label=c) for c in singles]
    handles += [Patch(facecolor="#cccccc", edgecolor=_MULTI_EDGE, hatch="//", label="2+ sounding"),
                Patch(facecolor=_SPECIAL["silence"], edgecolor="#999999", label="silence")]
    if any(lab is None for r in recs for lab in r["labels"]):
        handles.append(Patch(facecolor="#ffffff", edgecolor="#999999", label="no GT"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_title(title or "GT control points")
    fig.tight_layout()
    return fig
