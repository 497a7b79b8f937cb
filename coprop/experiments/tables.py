"""The paper's tables (paper §4: Tables 1, 2a, 2b, 4, 5, 6) computed from an ``Evaluation``, with the paper's
published numbers beside ours (coprop.paper_numbers): every J and F as mean [95 % interval] over training seeds
and test clips, every ablation row's paired difference to its reference row, and each claim of the paper a
table tests as agrees / disagrees / not resolved at this size (coprop.experiments.intervals)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from coprop.experiments import intervals as I
from coprop.experiments.evaluation import DATASET_OF, Evaluation
from coprop.experiments.methods import BASELINE, COPROP, COPROP_GT, KEYFRAME_ALONE, PROPAGATOR_FROM_GT, Method

NO_LLM = "no LLM configured"


DELTA = "Δ J vs reference %"


def _common(ev: Evaluation, methods) -> list[int] | None:
    """The training seeds every (available) method of a table was run for: all rows of a table use the same."""
    sets = [set(ev.seeds_of(m)) for m in methods if ev.available(m)]
    return sorted(set.intersection(*sets)) if sets else None


def _row(ev: Evaluation, m: Method, label: str | None = None, frames: str = "all", ref: Method | None = None,
         ref_frames: str = "all", seeds: list[int] | None = None, **extra) -> dict[str, Any]:
    """One table row: J and F with intervals over ``seeds`` (default: all the method was run for) and the test
    clips, and (``ref``) its paired J difference to the reference row's method on the same clips and seeds."""
    row: dict[str, Any] = {"method": label or m.label}
    row.update(extra)
    seeds = ev.seeds_of(m) if seeds is None else [s for s in seeds if s in ev.seeds_of(m)]
    if not ev.available(m) or not seeds:
        row.update({"ours: J %": None, "ours: F %": None,
                    "note": NO_LLM if not ev.available(m) else "not trained for these seeds"})
        return row
    row.update(I.cells(ev, m, frames, seeds=seeds))
    if ref is not None and ev.available(ref) and ev.seeds_of(ref):
        row.update(I.paired_cells(ev, m, ref, "J", frames, ref_frames, DELTA))
    row["seeds"] = ",".join(map(str, seeds))
    row["frames"] = I.frames_scored(ev, m, frames)["frames"]
    return row


def _finish(rows: list[dict], ev: Evaluation, table: str, row_map: dict[str, str]) -> pd.DataFrame:
    from coprop.paper_numbers import beside

    df = pd.DataFrame(rows)
    df.insert(1, "our data", ev.data_label)
    df["F-batch"] = f"F over F-batches of {I.FBATCH} videos"
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
            _row(ev, m[1], "Co-Prop", ref=m[0], **{"control points": m[1].source}),
            _row(ev, m[2], "Co-Prop (baseline as keyframe model)", ref=m[0], **{"control points": m[2].source})]
    return _finish(rows, ev, "1", {"Co-Prop": "Co-Prop (ours)"})


def table2a_methods(ev: Evaluation) -> list[tuple[str, Method]]:
    src = rcpg_stand_in(ev).source
    return [("KPF- RCPG- AIP-", Method("KPF- RCPG- AIP-", keyframe="stage1", source="cosine", propagator="l0")),
            ("KPF+ RCPG- AIP-", Method("KPF+ RCPG- AIP-", keyframe="ft", source="cosine", propagator="l0")),
            ("KPF+ RCPG+ AIP-", Method("KPF+ RCPG+ AIP-", keyframe="ft", source=src, propagator="l0")),
            ("KPF+ RCPG+ AIP+", Method("KPF+ RCPG+ AIP+", keyframe="ft", source=src, propagator="l4"))]


def table2a(ev: Evaluation) -> pd.DataFrame:
    """Table 2a: keyframe fine-tuning (KPF), control points (RCPG vs cosine), audio insertion (AIP vs AOT)."""
    rows, prev = [], None
    for label, m in table2a_methods(ev):   # each row's Δ: against the row above (one module switched on)
        rows.append(_row(ev, m, label, ref=prev, KPF="finetuned" if m.keyframe == "ft" else "all frames only",
                         **{"control points": m.source, "propagator": _PROP_NAMES[m.propagator]}))
        prev = m
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
    cosine = table2b_methods()[0][1]
    seeds = _common(ev, [m for _, m, _ in table2b_methods()])
    for label, m, _ in table2b_methods():
        row = _row(ev, m, label, ref=None if m == cosine else cosine, seeds=seeds, **{"control points": m.source})
        if ev.available(m) and ev.seeds_of(m):
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
    seeds = _common(ev, (a, t))
    rows = [_row(ev, a, "Co-Prop", guidance="audio", seeds=seeds),
            _row(ev, t, "Text-guided", ref=a, guidance="category label predicted from the audio", seeds=seeds)]
    return _finish(rows, ev, "4", {"Co-Prop": "Co-Prop", "Text-guided": "Text-guided"})


def table5_methods(ev: Evaluation) -> list[tuple[str, Method]]:
    main = rcpg_stand_in(ev)
    return [("AOT", replace(main, label="AOT", propagator="l0")),
            ("1-layer", replace(main, label="1-layer", propagator="l1")),
            ("4-layer", replace(main, label="4-layer", propagator="l4"))]


def table5(ev: Evaluation) -> pd.DataFrame:
    """Table 5: audio insertion at no level (AOT), the deepest level, all four levels."""
    ms = table5_methods(ev)
    seeds = _common(ev, [m for _, m in ms])
    rows = [_row(ev, m, label, ref=ms[i - 1][1] if i else None, seeds=seeds, propagator=_PROP_NAMES[m.propagator],
                 **{"s/frame": ev.seconds_per_frame(m)}) for i, (label, m) in enumerate(ms)]
    return _finish(rows, ev, "5", {r: r for r, _ in table5_methods(ev)})


def table6(ev: Evaluation) -> pd.DataFrame:
    """Table 6 (paper A.3): Co-Prop on all frames, on its keyframes (control points) and on propagated frames."""
    m = rcpg_stand_in(ev)
    rows = [_row(ev, m, "All Frames", "all"), _row(ev, m, "Key Frames", "key"),
            _row(ev, m, "Normal Frames", "normal", ref=m, ref_frames="key")]
    return _finish(rows, ev, "6", {r: r for r in ("All Frames", "Key Frames", "Normal Frames")})


def _unique(ms: list[Method]) -> list[Method]:
    seen, out = set(), []
    for m in ms:
        if m.key not in seen:
            seen.add(m.key)
            out.append(m)
    return out


def core_methods(ev: Evaluation) -> list[Method]:
    """Tables 1 and 2a, Co-Prop with GT control points (notebook 06) and the headline's two stage references:
    run for every training seed."""
    return _unique(table1_methods(ev) + [m for _, m in table2a_methods(ev)]
                   + [COPROP_GT, KEYFRAME_ALONE, PROPAGATOR_FROM_GT])


def all_methods(ev: Evaluation) -> list[Method]:
    """Every method of every table (Tables 2b, 4, 5, 6 may run for fewer seeds, see their captions)."""
    return _unique(core_methods(ev) + [m for _, m, _ in table2b_methods()] + table4_methods(ev)
                   + [m for _, m in table5_methods(ev)])


def claims(ev: Evaluation, table: str) -> pd.DataFrame:
    """The claims of the paper that ``table`` ('1', '2a', '2b', '4', '5', '6') tests, each with the measured paired
    difference, its interval, and the verdict in words."""
    m1 = table1_methods(ev)
    a2 = [m for _, m in table2a_methods(ev)]
    b2 = {label: m for label, m, _ in table2b_methods()}
    t4 = table4_methods(ev)
    t5 = [m for _, m in table5_methods(ev)]
    co = rcpg_stand_in(ev)
    cp_name = "RCPG" if ev.has_llm else "the learned detector (RCPG's offline stand-in)"
    spec = {
        "1": [("Co-Prop beats the simultaneous baseline (Table 1, M3)", m1[1], m1[0], 1, "all", "all"),
              ("Co-Prop around the baseline beats the baseline alone (Fig. 4)", m1[2], m1[0], 1, "all", "all")],
        "2a": [("fine-tuning the Keyframe Processor on keyframes helps (KPF)", a2[1], a2[0], 1, "all", "all"),
               (f"better control points than cosine help (RCPG; here {cp_name})", a2[2], a2[1], 1, "all", "all"),
               ("audio insertion in the propagator helps (AIP vs AOT)", a2[3], a2[2], 1, "all", "all")],
        "2b": [(f"control points from {cp_name} beat cosine similarity", b2["RCPG (3-step + retrieval)"]
                if ev.has_llm else b2["Learned detector (offline)"], b2["Cosine"], 1, "all", "all")],
        "4": [("text labels in place of audio degrade the result", t4[1], t4[0], -1, "all", "all")],
        "5": [("1-level audio insertion beats AOT", t5[1], t5[0], 1, "all", "all"),
              ("4-level audio insertion beats 1-level", t5[2], t5[1], 1, "all", "all")],
        "6": [("Co-Prop is better on normal (propagated) frames than on keyframes (A.3)", co, co, 1, "normal",
               "key")],
    }[table]
    rows = [I.claim(ev, text, a, b, sign, "J", fa, fb) for text, a, b, sign, fa, fb in spec
            if ev.available(a) and ev.available(b)]
    for r, (text, a, b, sign, fa, fb) in zip(rows, spec):
        if fa != fb:
            r["measured"] = f"J on {fa} frames - J on {fb} frames ({a.label})"
    return pd.DataFrame(rows)
