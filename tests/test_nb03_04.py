"""Notebooks 03 (keyframe training) and 04 (propagator + baseline training) run end to end through papermill
on the smoke synthetic set, share one run folder, and leave curves, tables, metrics and loadable weights."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _execute(name: str, tmp_path: Path, **params) -> Path:
    import papermill as pm

    out_dir = tmp_path / name
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.out.ipynb"),
                        kernel_name="python3", parameters={"output_dir": str(out_dir), **params},
                        cwd=str(tmp_path), progress_bar=False)
    return out_dir


def test_train_notebooks_smoke(tmp_path, synth_root):
    from coprop.train import load_run

    run_dir = tmp_path / "run"
    common = {"data_root": str(synth_root), "run_dir": str(run_dir), "subset": "ms3"}
    out03 = _execute("03_train_keyframe", tmp_path, **common)
    m03 = json.loads((out03 / "metrics.json").read_text())
    assert m03["data"] == "synthetic"
    assert 0.0 <= m03["keyframe_ft_val_J"] <= 1.0 and 0.0 <= m03["val_F"] <= 1.0
    assert m03["wall_time_s"] > 0 and m03["keyframe_train_samples_per_s"] > 0
    assert (out03 / "training_curves.png").stat().st_size > 1000
    assert "keyframe fine-tuned" in (out03 / "train_history.csv").read_text()  # stage named for readers
    assert (out03 / "train_history.md").read_text().count("synthetic") >= 1

    out04 = _execute("04_train_propagator", tmp_path, **common)
    m04 = json.loads((out04 / "metrics.json").read_text())
    assert {"propagator_val_J", "baseline_val_J", "propagator_wall_s"} <= set(m04)

    run = load_run(run_dir)
    assert set(run.stages) == {"keyframe", "keyframe_ft", "propagator", "baseline"}
    config = json.loads((run_dir / "config.json").read_text())
    assert set(config["stages"]) == {"keyframe", "keyframe_ft", "propagator", "baseline"}
    assert config["data"]["mode"] == "binary" and "revision" in config["git"]
    # notebook 04 started the propagator's and the baseline's encoders from notebook 03's keyframe model
    assert config["stages"]["propagator"]["init_backbone"].endswith("keyframe_ft.safetensors")
    assert config["stages"]["baseline"]["init_backbone"].endswith("keyframe_ft.safetensors")
    stages_in_csv = {line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]}
    assert stages_in_csv == {"keyframe", "keyframe_ft", "propagator", "baseline"}
