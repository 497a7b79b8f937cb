"""``reports/headline.json``: the demo's headline numbers as fractions, with 95 % intervals (issue 9's schema).

    keyframe                      the fine-tuned Keyframe Processor on every test frame on its own: J and the
                                  Alignment Rate near (within ±k frames of a GT source conversion) and far from one
    propagator_from_gt_keyframes  the 4-level Audio-Insert Propagator restarted from the GT mask at every GT control
                                  point: J over the propagated frames (the keyframes themselves are GT)
    methods                       J, F, AR near, AR far of the simultaneous baseline, Co-Prop, Co-Prop around the
                                  baseline and Co-Prop with GT control points, each with its interval
    paired                        Co-Prop - baseline, J, paired on the same clips and seeds
"""
from __future__ import annotations

from typing import Any

from coprop.experiments import intervals as I
from coprop.experiments.evaluation import Evaluation
from coprop.experiments.methods import COPROP_GT, KEYFRAME_ALONE, PROPAGATOR_FROM_GT, Method
from coprop.experiments.tables import table1_methods

METHOD_NAMES = ("simultaneous_baseline", "coprop", "coprop_baseline_as_keyframe_model")


def _method(ev: Evaluation, m: Method) -> dict[str, Any]:
    c = I.cells(ev, m, "all", ("J", "F", "AR near", "AR far"), prefix="")
    out: dict[str, Any] = {}
    for metric, key in (("J", "J"), ("F", "F"), ("AR near", "AR_near"), ("AR far", "AR_far")):
        out[key] = c[f"{metric} %"] / 100
        out[f"{key}_ci"] = [c[f"{metric} %_lo"] / 100, c[f"{metric} %_hi"] / 100]
    return out


def headline(ev: Evaluation) -> dict[str, Any]:
    """The headline dict (fractions in [0, 1]); every method must have been run (``ev.run``) for all seeds."""
    methods = dict(zip(METHOD_NAMES, table1_methods(ev)))
    if ev.seeds_of(COPROP_GT) == ev.seeds:
        methods["coprop_gt_control_points"] = COPROP_GT
    kf = I.cells(ev, KEYFRAME_ALONE, "all", ("J", "AR near", "AR far"), prefix="")
    prop = I.cells(ev, PROPAGATOR_FROM_GT, "normal", ("J",), prefix="")
    d = I.paired(ev, methods["coprop"], methods["simultaneous_baseline"], "J")
    return {
        "data": ev.data_label, "test_clips": len(ev.clips), "seeds": list(ev.seeds),
        "keyframe": {"J": kf["J %"] / 100, "alignment_near": kf["AR near %"] / 100,
                     "alignment_far": kf["AR far %"] / 100},
        "propagator_from_gt_keyframes": {"J": prop["J %"] / 100},
        "methods": {name: _method(ev, m) for name, m in methods.items()},
        "paired": {"coprop - simultaneous_baseline": {"J": d[0], "J_ci": [d[1], d[2]]}},
        "fbatch": I.FBATCH,
    }
