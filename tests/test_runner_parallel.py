"""coprop.runner with ``workers=2``: two notebooks side by side, index.csv rows in notebook order whatever
order they finish in, a failing notebook named, kernels on one thread, longest first from the index."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from coprop import runner
from coprop.runner.execute import longest_first, run_chains

PARAMS = '''sleep_s: float = 0.0  # stall
run_dir: str = ""  # shared folder: notebooks with the same value run one after another by default
fail: bool = False  # raise
output_dir: str = "reports/_scratch/nb"  # artefacts'''

BODY = '''import json, os, time
from pathlib import Path
started = time.time()
time.sleep(sleep_s)
if fail:
    raise ValueError("planned failure in the parallel run")
Path(output_dir).mkdir(parents=True, exist_ok=True)
(Path(output_dir) / "metrics.json").write_text(json.dumps({"omp": os.environ.get("OMP_NUM_THREADS", ""),
                                                            "pid": os.getppid(), "start": started,
                                                            "end": time.time()}))'''


def _nb(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def three(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for stem in ("20_slow", "21_fast", "22_fails"):
        _nb(nbs / f"{stem}.ipynb")
    cfg = tmp_path / "par.yaml"
    # 20_slow finishes last although it starts first: its row must still come first
    cfg.write_text("20_slow:\n  sleep_s: 3.0\n  run_dir: a\n21_fast:\n  run_dir: b\n22_fails:\n  fail: true\n"
                   "  run_dir: c\n")
    return nbs, tmp_path / "reports", cfg


def test_two_workers_rows_in_notebook_order_and_failure_named(three):
    nbs, reports, cfg = three
    lines = []
    results = runner.run_notebooks(cfg, notebooks=nbs, reports=reports, workers=2, progress_bar=False,
                                   echo=lines.append)
    assert [r.notebook for r in results] == ["20_slow", "21_fast", "22_fails"]
    assert [r.status for r in results] == ["ok", "ok", "failed"]
    assert all(0 < r.cpu_s < 60 for r in results)     # the kernel's CPU time was counted (start-up at least)
    assert "planned failure in the parallel run" in results[2].error and "cell " in results[2].error
    rows = runner.read_index(reports)
    assert [(r["notebook"], r["status"]) for r in rows] == [("20_slow", "ok"), ("21_fast", "ok"),
                                                            ("22_fails", "failed")]
    assert "planned failure" in rows[2]["error"]
    assert not list(reports.glob("*/*.running"))
    assert any("FAIL" in ln.upper() and "22_fails" in ln for ln in lines)
    m_slow = json.loads((reports / "20_slow" / "par" / "metrics.json").read_text())
    m_fast = json.loads((reports / "21_fast" / "par" / "metrics.json").read_text())
    assert m_slow["omp"] == m_fast["omp"] == "1"        # kernels single-threaded
    assert m_slow["pid"] != m_fast["pid"]               # run by two worker processes
    # the next run would start the longest (20_slow, 3 s last time) first
    assert longest_first(runner.list_notebooks(nbs), reports, "par")[0].stem == "20_slow"

def test_longest_first_uses_last_ok_duration(tmp_path):
    reports = tmp_path / "reports"
    nbs = [tmp_path / f"{s}.ipynb" for s in ("a", "b", "c")]
    for nb, d, st in (("a", 5, "ok"), ("b", 50, "ok"), ("c", 900, "failed"), ("a", 60, "ok")):
        runner.append_index(reports, {"notebook": nb, "run": "r", "status": st, "duration_s": d})
    assert [p.stem for p in longest_first(nbs, reports, "r")] == ["a", "b", "c"]   # a's last ok: 60 s


def test_chains_run_in_order(three):
    nbs, reports, cfg = three
    results = runner.run_notebooks(cfg, only=["20", "21"], notebooks=nbs, reports=reports, workers=2,
                                   progress_bar=False, echo=lambda *_: None, chains=[["21_fast", "20_slow"]])
    assert [r.status for r in results] == ["ok", "ok"]
    slow, fast = (json.loads((reports / s / "par" / "metrics.json").read_text()) for s in ("20_slow", "21_fast"))
    assert fast["start"] >= slow["end"]      # a chain runs in notebook order, one at a time


def test_default_chains_group_a_shared_run_dir(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    paths = [_nb(nbs / f"{s}.ipynb") for s in ("30_a", "31_b", "32_c", "33_d")]
    params = {paths[0]: {"run_dir": "runs/x"}, paths[1]: {}, paths[2]: {"run_dir": "runs/x"}, paths[3]: {}}
    chains = run_chains(paths, params)
    assert [[p.stem for p in ch] for ch in chains] == [["30_a", "32_c"], ["31_b", "33_d"]]   # "" is shared too
    chains = run_chains(paths, params, [["32_c", "30_a"], ["99_absent"]])
    assert [[p.stem for p in ch] for ch in chains] == [["30_a", "32_c"], ["31_b"], ["33_d"]]
