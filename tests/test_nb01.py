"""notebooks/01_control_points runs through papermill at smoke size and leaves its table, figures and metrics."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from coprop.paths import repo_root

NB = repo_root() / "notebooks" / "01_control_points.ipynb"


@pytest.mark.notebook
def test_nb01_smoke(tmp_path, synth_root, monkeypatch):
    import papermill

    out = tmp_path / "out"
    papermill.execute_notebook(str(NB), str(tmp_path / "nb01.ipynb"), kernel_name="python3", progress_bar=False,
                               cwd=str(repo_root()),
                               parameters={"output_dir": str(out), "data_root": str(synth_root), "seed": 0})
    table = pd.read_csv(out / "table3.csv").set_index("Dataset")
    assert list(table.index[:3]) == ["S4-style", "MS3-style", "MOC-style"]
    assert table.loc["S4-style", "Category Changes (%)"] == 0.0        # one object sounds the whole S4 clip
    assert table.loc["S4-style", "Avg.Cate"] == 1.0
    assert table.loc["MOC-style", "Category Changes (%)"] == 100.0     # MOC = clips with a change, by definition
    assert table.loc["MOC-style", "Videos"] <= table.loc["MS3-style", "Videos"]
    assert "synthetic" in (out / "table3.md").read_text()
    assert (out / "audio_windows.csv").is_file() and (out / "mask_rule_vs_schedule.csv").is_file()
    for fig in ("raster_ms3.png", "raster_s4.png", "raster_avss.png", "segment_lengths.png"):
        assert (out / fig).stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "synthetic" and metrics["S4-style_videos"] == 2
    assert metrics["keyframes"]["s4"] == {"clips": 3, "keyframes": 3}   # S4 train: frame 0 of each clip
