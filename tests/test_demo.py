"""The main job's helpers: which training seeds it prepares, its job plan, and the headline it prints."""
from __future__ import annotations

import pandas as pd

from coprop import demo, demo_plan


def test_demo_trains_every_seed_the_ablations_ask_for(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('defaults: {seed: 0}\n05_ablations:\n  seeds: "3, 5"\n  extra_seeds: "5, 7"\n')
    assert demo._training_seeds(cfg) == ([3, 5], [5])          # extra seeds must be training seeds
    cfg.write_text("defaults: {seed: 0}\n")
    assert demo._training_seeds(cfg) == ([0], [0])


def test_plan_orders_stages_and_serialises_each_run_folder():
    jobs = demo_plan.plan([0, 1, 2], [0])
    names = [j.name for j in jobs]
    assert len(names) == len(set(names))
    after = {j.name: set(j.after) for j in jobs}
    for s in (0, 1, 2):
        assert after[f"s{s}:main/keyframe_ft"] == {f"s{s}:main/keyframe"}
        assert f"s{s}:main/keyframe_ft" in after[f"s{s}:aot/propagator"]     # starts from the fine-tuned encoder
        # propagator and baseline share seed<s>/main/: one after the other
        assert f"s{s}:main/propagator" in after[f"s{s}:main/baseline"]
        assert {f"s{s}:sources", f"s{s}:main/baseline", f"s{s}:aot/propagator"} <= after[f"s{s}:predict"]
    assert not any(n.startswith(("s1:text", "s1:aip1", "s2:text")) for n in names)   # extra models: seed 0 only
    assert {"s0:text/keyframe_ft", "s0:aip1/propagator"} <= after["s0:predict-extra"]
    # the scheduler prefers jobs in list order: every seed's keyframe model before any extra variant
    assert max(names.index(f"s{s}:main/keyframe") for s in (0, 1, 2)) < names.index("s0:text/keyframe")


def test_compact_headline_shows_intervals_and_paper_columns(tmp_path):
    out = tmp_path / demo.HEADLINE[0] / "demo"
    out.mkdir(parents=True)
    pd.DataFrame({"method": ["Co-Prop"], "our data": ["synthetic"], "ours: J %": [46.25], "ours: J %_lo": [44.04],
                  "ours: J %_hi": [48.5], "ours: F %": [52.7], "ours: F %_lo": [50.0], "ours: F %_hi": [55.1],
                  "paper: M3 J": [63.6], "frames": [120]}).to_csv(out / f"{demo.HEADLINE[1]}.csv", index=False)
    text = demo.compact_headline(tmp_path)
    assert "46.2 [44.0, 48.5]" in text or "46.3 [44.0, 48.5]" in text
    assert "52.7 [50.0, 55.1]" in text and "63.6" in text and "synthetic" in text
    assert "frames" not in text
    assert "not written" in demo.compact_headline(tmp_path / "missing")
