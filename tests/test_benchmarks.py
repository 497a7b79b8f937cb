"""The benchmark scripts run end to end at a tiny size and write the tables they promise (no timing asserts)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import _harness as H  # noqa: E402
from benchmarks import memory_vs_length as M  # noqa: E402
from benchmarks import throughput as TP  # noqa: E402


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- harness ----------------------------------------------------------------------------------------------
def test_isolated_case_measures_peak_and_records_oom_instead_of_crashing():
    ok = H.run_isolated("benchmarks._harness:allocation_case", {"mb": 300}, mem_cap_mb=3000, timeout_s=120)
    assert ok["status"] == H.OK
    # the 300 MB buffer shows up in the peak above the resident base (allow for allocator slack)
    assert 280 <= ok["peak_mem_mb"] - ok["base_mb"] <= 400, ok
    oom = H.run_isolated("benchmarks._harness:allocation_case", {"mb": 4000}, mem_cap_mb=1500, timeout_s=120)
    assert oom["status"] == H.OOM, oom
    bad = H.run_isolated("benchmarks._harness:no_such_case", {}, timeout_s=120)
    assert bad["status"] == H.ERROR and "no_such_case" in bad["note"]


def test_timeout_is_recorded():
    row = H.run_isolated("benchmarks._harness:allocation_case", {"mb": 10}, timeout_s=0.5)
    assert row["status"] == H.TIMEOUT


def test_prediction_skips_cases_over_the_cap_and_after_an_oom():
    done = [{"T": 10, "status": "ok", "peak_mem_mb": 1000.0, "base_mb": 600.0, "seconds": 1.0},
            {"T": 50, "status": "ok", "peak_mem_mb": 3000.0, "base_mb": 600.0, "seconds": 5.0}]
    assert M._predicted_over(done, 120, cap=6144, timeout=600) == (H.OVER_CAP, "predicted 6500 MB > cap 6144 MB")
    assert M._predicted_over(done, 100, cap=6144, timeout=600) is None          # 5500 MB fits
    assert M._predicted_over(done[:1], 50, cap=6144, timeout=600) is None      # 600 + 400*5 = 2600 MB
    assert M._predicted_over(done, 100, cap=None, timeout=600) is None         # no cap on GPU
    assert M._predicted_over(done, 1000, cap=None, timeout=60)[0] == H.SKIPPED  # ~100 s > timeout
    oom = [{"T": 10, "status": H.OOM}]
    assert M._predicted_over(oom, 50, cap=6144, timeout=600)[0] == H.OVER_CAP
    assert H.predict_linear([(1, 2.0), (3, 6.0)], 5) == pytest.approx(10.0)


def test_targets_compare_methods_and_lengths():
    rows = [{"config": "tiny", "method": "coprop", "T": 10, "status": "ok", "peak_mem_mb": 800.0, "work_mem_mb": 20.0},
            {"config": "tiny", "method": "coprop", "T": 1000, "status": "ok", "peak_mem_mb": 840.0},
            {"config": "tiny", "method": "coprop", "T": 100, "status": "ok", "peak_mem_mb": 810.0, "work_mem_mb": 25.0},
            {"config": "tiny", "method": "baseline", "T": 100, "status": "ok", "peak_mem_mb": 4050.0,
             "work_mem_mb": 3300.0}]
    growth, ratio = M.targets(rows, cap=6144)
    assert growth["met"] == "yes" and growth["measured"].startswith("+5.0%")
    assert ratio["met"] == "yes" and ratio["measured"] == "5x"
    rows[3]["peak_mem_mb"] = 3000.0
    assert M.targets(rows, cap=6144)[1]["met"] == "no"
    rows[3] = {"config": "tiny", "method": "baseline", "T": 100, "status": H.OVER_CAP}
    assert M.targets(rows, cap=6144)[1]["met"] == "yes"  # cap / 810 MB >= 5


def test_tables_are_written_as_csv_and_markdown(tmp_path):
    rows = [{"a": 1, "b": 2.5}, {"a": 3, "b": None}]
    csv_path, md_path = H.write_table(rows, ["a", "b"], tmp_path / "t", title="T", notes=["n"],
                                      extra_sections=[("Targets", "x")])
    assert _read(csv_path) == [{"a": "1", "b": "2.5"}, {"a": "3", "b": ""}]
    text = md_path.read_text()
    assert "| a | b |" in text and "## Targets" in text and "*n*" in text


# ---- the scripts -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_memory_vs_length_script_writes_its_table(tmp_path):
    proc = _run("memory_vs_length.py", "--config", "tiny", "--lengths", "2,3", "--size", "64", "--device", "cpu",
                "--threads", "1", "--no-isolate", "--out-dir", str(tmp_path), "--tag", "t")
    out = tmp_path / f"memory_vs_length_{H.device_slug('cpu')}_t.csv"
    rows = _read(out)
    assert list(rows[0]) == M.COLUMNS
    assert [(r["method"], r["T"], r["status"]) for r in rows] == [
        ("baseline", "2", "ok"), ("baseline", "3", "ok"), ("coprop", "2", "ok"), ("coprop", "3", "ok")]
    for r in rows:
        assert float(r["peak_mem_mb"]) > 100 and float(r["ms_per_frame"]) > 0 and r["size"] == "64"
        # weights + activations only: above zero, below the peak by at least the imported torch
        assert 0 < float(r["model_mem_mb"]) < float(r["peak_mem_mb"]) - 100
        assert float(r["model_mem_mb"]) == pytest.approx(float(r["peak_mem_mb"]) - float(r["import_mb"]), abs=0.2)
    assert (tmp_path / f"memory_vs_length_{H.device_slug('cpu')}_t_targets.csv").is_file()
    assert "Targets" in proc.stdout and "| tiny | coprop | 3 |" in proc.stdout


@pytest.mark.slow
def test_throughput_script_writes_its_table(tmp_path):
    _run("throughput.py", "--configs", "tiny", "--dtypes", "fp32,bf16", "--batches", "1,2", "--size", "64",
         "--clip-len", "3", "--segment-len", "2", "--min-seconds", "0.05", "--device", "cpu", "--threads", "1",
         "--no-isolate", "--profile", "all", "--out-dir", str(tmp_path))
    rows = _read(tmp_path / f"throughput_{H.device_slug('cpu')}.csv")
    assert list(rows[0]) == TP.COLUMNS
    by = {(r["component"], r["dtype"], r["batch"]): r for r in rows}
    assert set(by) == {(c, d, b) for c in TP.COMPONENTS for d in ("fp32", "bf16") for b in ("1", "2")}
    for comp in TP.COMPONENTS:
        for b in ("1", "2"):
            assert by[(comp, "fp32", b)]["status"] == "ok", by[(comp, "fp32", b)]
            assert float(by[(comp, "fp32", b)]["fps"]) > 0
            assert by[(comp, "bf16", b)]["status"] == "skipped"  # CPU run
    assert by[("train_propagator", "fp32", "1")]["unit"] == "clips/s"
    targets = _read(tmp_path / f"throughput_{H.device_slug('cpu')}_targets.csv")
    # only the configs that ran are judged; the tiny CPU targets get a yes/no verdict with a margin
    assert [t["target"].split(":")[0] for t in targets] == ["tiny on the 2-core CPU"] * 2
    assert all(t["met"] in ("yes", "no") and t["margin"].endswith("%") for t in targets)
    profile = (tmp_path / f"throughput_{H.device_slug('cpu')}_profile.md").read_text()
    for section in ("## tiny pipeline", "## tiny propagator_step", "propagator.backbone", "(outside modules)"):
        assert section in profile
