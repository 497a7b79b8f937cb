"""The paper's tables (paper §4: Tables 1, 2a, 2b, 4, 5, 6) computed from an ``Evaluation``, with the paper's
published numbers beside ours (coprop.paper_numbers)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from coprop.experiments.evaluation import DATASET_OF, Evaluation
from coprop.experiments.methods import BASELINE, COPROP, Method

NO_LLM = "no LLM configured"


def _row(ev: Evaluation, m: Method, label: str | None = None, frames: str = "all", **extra) -> dict[str, Any]:
    row: dict[str, Any] = {"method": label or m.label}
    row.update(extra)
    if not ev.available(m):
        row.update({"ours: J %": None, "ours: J std": None, "ours: F %": None, "ours: F std": None,
                    "note": NO_LLM})
        return row
    s = ev.scores(m, frames)
    row.update({"ours: J %": s["J"], "ours: J std": s["J std"], "ours: F %": s["F"], "ours: F std": s["F std"],
                "frames": s["frames"]})
    return row


def _finish(rows: list[dict], ev: Evaluation, table: str, row_map: dict[str, str]) -> pd.DataFrame:
    from coprop.paper_numbers import beside

    df = pd.DataFrame(rows)
    df.insert(1, "our data", ev.data_label)
    df["seeds"] = ",".join(map(str, ev.seeds))
    return beside(df, table, row_map, datasets=(DATASET_OF[ev.data.subset],))


def rcpg_stand_in(ev: Evaluation) -> Method:
    """The RCPG row's method: the LLM pipeline when one is configured, else the offline learned detector."""
    return replace(COPROP, source="rcpg:3-step+retrieval" if ev.has_llm else "learned")


def table1_methods(ev: Evaluation) -> list[Method]:
    return [BASELINE, rcpg_stand_in(ev), replace(rcpg_stand_in(ev), label="Co-Prop (baseline as keyframe model)",
                                                  keyframe="baseline")]


def table1(ev: Evaluation) -> pd.DataFrame:
    """Table 1 / Fig. 4: the simultaneous baseline, Co-Prop, and Co-Prop with the baseline as keyframe model."""
    m = table1_methods(ev)
    rows = [_row(ev, m[0], "Simultaneous baseline (TPAVI/AVSegFormer-style)"),
            _row(ev, m[1], "Co-Prop", **{"control points": m[1].source}),
            _row(ev, m[2], "Co-Prop (baseline as keyframe model)", **{"control points": m[2].source})]
    return _finish(rows, ev, "1", {"Co-Prop": "Co-Prop (ours)"})


def table2a_methods(ev: Evaluation) -> list[tuple[str, Method]]:
    src = rcpg_stand_in(ev).source
    return [("KPF- RCPG- AIP-", Method("KPF- RCPG- AIP-", keyframe="stage1", source="cosine", propagator="l0")),
            ("KPF+ RCPG- AIP-", Method("KPF+ RCPG- AIP-", keyframe="ft", source="cosine", propagator="l0")),
            ("KPF+ RCPG+ AIP-", Method("KPF+ RCPG+ AIP-", keyframe="ft", source=src, propagator="l0")),
            ("KPF+ RCPG+ AIP+", Method("KPF+ RCPG+ AIP+", keyframe="ft", source=src, propagator="l4"))]


def table2a(ev: Evaluation) -> pd.DataFrame:
    """Table 2a: keyframe fine-tuning (KPF), control points (RCPG vs cosine), audio insertion (AIP vs AOT)."""
    rows = []
    for label, m in table2a_methods(ev):
        rows.append(_row(ev, m, label, KPF="finetuned" if m.keyframe == "ft" else "all frames only",
                         **{"control points": m.source, "propagator": _PROP_NAMES[m.propagator]}))
    return _finish(rows, ev, "2a", {r: r for r, _ in table2a_methods(ev)})


_PROP_NAMES = {"l0": "AOT (no audio insertion)", "l1": "AIP 1 level", "l4": "AIP 4 levels"}


def table2b_methods() -> list[tuple[str, Method, str]]:
    return [("Cosine", replace(COPROP, label="Cosine", source="cosine"), "Cosine"),
            ("1-step", replace(COPROP, label="1-step", source="rcpg:1-step"), "1-step"),
            ("3-step", replace(COPROP, label="3-step", source="rcpg:3-step"), "3-step"),
            ("RCPG (3-step + retrieval)", replace(COPROP, label="RCPG", source="rcpg:3-step+retrieval"), "RCPG"),
            ("Learned detector (offline)", replace(COPROP, label="Learned", source="learned"), ""),
            ("GT control points (oracle)", replace(COPROP, label="GT", source="gt"), "")]


def table2b(ev: Evaluation) -> pd.DataFrame:
    """Table 2b: control-point sources, all with the fine-tuned Keyframe Processor and the 4-level AIP.
    Boundary F1 (±0 frames) of each source against the GT control points is reported beside J and F."""
    from coprop.controlpoints.detectors import GTSource

    gt = {c.name: GTSource()(c) for c in ev.clips}
    rows = []
    for label, m, _ in table2b_methods():
        row = _row(ev, m, label, **{"control points": m.source})
        if ev.available(m):
            row["CP boundary F1"] = _boundary_f1(ev.control_points(m), gt)
        rows.append(row)
    return _finish(rows, ev, "2b", {label: paper for label, _, paper in table2b_methods() if paper})


def _boundary_f1(pred: dict[str, list[int]], gt: dict[str, list[int]]) -> float:
    """Pooled precision/recall of control points after frame 0 (exact frame), as F1."""
    tp = fp = fn = 0
    for name, p in pred.items():
        g = gt[name]
        for t in range(1, len(g)):
            tp += int(p[t] and g[t])
            fp += int(p[t] and not g[t])
            fn += int(g[t] and not p[t])
    return 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else float("nan")


def table4_methods(ev: Evaluation) -> list[Method]:
    main = rcpg_stand_in(ev)
    return [main, replace(main, label="Text-guided", keyframe="text")]


def table4(ev: Evaluation) -> pd.DataFrame:
    """Table 4: keyframes guided by the frame's audio vs by a category label predicted from that audio."""
    a, t = table4_methods(ev)
    rows = [_row(ev, a, "Co-Prop", guidance="audio"),
            _row(ev, t, "Text-guided", guidance="category label predicted from the audio")]
    return _finish(rows, ev, "4", {"Co-Prop": "Co-Prop", "Text-guided": "Text-guided"})


def table5_methods(ev: Evaluation) -> list[tuple[str, Method]]:
    main = rcpg_stand_in(ev)
    return [("AOT", replace(main, label="AOT", propagator="l0")),
            ("1-layer", replace(main, label="1-layer", propagator="l1")),
            ("4-layer", replace(main, label="4-layer", propagator="l4"))]


def table5(ev: Evaluation) -> pd.DataFrame:
    """Table 5: audio insertion at no level (AOT), the deepest level, all four levels."""
    rows = [_row(ev, m, label, propagator=_PROP_NAMES[m.propagator],
                 **{"s/frame": ev.seconds_per_frame(m)}) for label, m in table5_methods(ev)]
    return _finish(rows, ev, "5", {r: r for r, _ in table5_methods(ev)})


def table6(ev: Evaluation) -> pd.DataFrame:
    """Table 6 (paper A.3): Co-Prop on all frames, on its keyframes (control points) and on propagated frames."""
    m = rcpg_stand_in(ev)
    rows = [_row(ev, m, "All Frames", "all"), _row(ev, m, "Key Frames", "key"),
            _row(ev, m, "Normal Frames", "normal")]
    return _finish(rows, ev, "6", {r: r for r in ("All Frames", "Key Frames", "Normal Frames")})


def all_methods(ev: Evaluation) -> list[Method]:
    ms = table1_methods(ev) + [m for _, m in table2a_methods(ev)] + [m for _, m, _ in table2b_methods()] \
        + table4_methods(ev) + [m for _, m in table5_methods(ev)]
    seen, out = set(), []
    for m in ms:
        if m.key not in seen:
            seen.add(m.key)
            out.append(m)
    return out
