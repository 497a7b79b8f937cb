"""The main job's helpers: which training seeds it prepares and the headline it prints."""
from __future__ import annotations

import pandas as pd

from coprop import demo


def test_demo_trains_every_seed_the_ablations_ask_for(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('defaults: {seed: 0}\n05_ablations:\n  seeds: "3, 5"\n')
    assert demo._training_seeds(cfg) == [3, 5]
    cfg.write_text("defaults: {seed: 0}\n")
    assert demo._training_seeds(cfg) == [0]


def test_compact_headline_shows_means_stds_and_paper_columns(tmp_path):
    out = tmp_path / demo.HEADLINE[0] / "demo"
    out.mkdir(parents=True)
    pd.DataFrame({"method": ["Co-Prop"], "our data": ["synthetic"], "ours: J %": [46.25], "ours: J std": [1.04],
                  "ours: F %": [52.7], "ours: F std": [float("nan")], "paper: M3 J": [63.6], "frames": [120]}
                 ).to_csv(out / f"{demo.HEADLINE[1]}.csv", index=False)
    text = demo.compact_headline(tmp_path)
    header, _, row = text.splitlines()[:3]
    assert header.split(" | ") == ["method", "ours: J %", "ours: J std", "ours: F %", "ours: F std", "paper: M3 J"]
    assert row.split(" | ") == ["Co-Prop", "46.2", "1.0", "52.7", "", "63.6"]
    assert "synthetic" in text
    assert "not written" in demo.compact_headline(tmp_path / "missing")
