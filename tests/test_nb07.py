"""Notebook 07_performance runs through papermill: it benchmarks at a tiny size itself, then plots given CSVs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NB = Path(__file__).resolve().parents[1] / "notebooks" / "07_performance.ipynb"


@pytest.mark.slow
@pytest.mark.notebook
def test_nb07_runs_the_benchmarks_when_no_csv_is_given_and_replots_them(tmp_path):
    import papermill

    first = tmp_path / "first"
    papermill.execute_notebook(str(NB), str(tmp_path / "first.ipynb"), kernel_name="python3",
                               parameters={"output_dir": str(first), "bench_lengths": "2,3",
                                           "bench_components": "keyframe,pipeline", "bench_min_seconds": 0.05})
    for name in ("memory_vs_length", "throughput"):
        assert (first / f"{name}.png").stat().st_size > 5000
        assert (first / f"{name}.csv").is_file() and (first / f"{name}.md").is_file()
    assert (first / "memory_targets.csv").is_file() and (first / "throughput_targets.csv").is_file()
    metrics = json.loads((first / "metrics.json").read_text())
    assert metrics["memory_cases_ok"] == 4 and metrics["throughput_cases_ok"] == 2

    # plotting existing results does not run anything again: the CSVs it is given (several: stacked) are reported
    mem_csv, tp_csv = (next(p for p in (first / "benchmark").glob(f"{name}_*.csv") if not p.stem.endswith("_targets"))
                       for name in ("memory_vs_length", "throughput"))
    second = tmp_path / "second"
    papermill.execute_notebook(str(NB), str(tmp_path / "second.ipynb"), kernel_name="python3",
                               parameters={"output_dir": str(second), "memory_csv": f"{mem_csv},{mem_csv}",
                                           "throughput_csv": str(tp_csv)})
    assert not (second / "benchmark").exists()
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["memory_csv"] == f"{mem_csv},{mem_csv}" and metrics["memory_cases_ok"] == 8
