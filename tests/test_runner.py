"""coprop.runner on tiny notebooks written by the tests: parameters, index.csv, failures, killed runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from coprop import runner
from coprop.errors import ConfigError

PARAMS = '''seed: int = 0  # random seed
value: float = 1.5  # number the notebook writes
fail: bool = False  # raise in the third cell
sleep_s: float = 0.0  # stall, so a test can kill the runner mid-run
output_dir: str = "reports/_scratch/nb"  # artefacts
label: str = "x"  # papermill skips this line (two '=': empty = none), the runner must still know it'''

BODY = '''import json, time
from pathlib import Path
Path(output_dir).mkdir(parents=True, exist_ok=True)
time.sleep(sleep_s)'''

RAISE = '''x = 1
if fail:
    raise ValueError("planned failure")'''

WRITE = '''(Path(output_dir) / "metrics.json").write_text(json.dumps({"J": value * 2, "seed": seed, "table": [1, 2], "label": label}))'''


def _write_nb(path: Path, with_output_dir: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMS if with_output_dir else "seed: int = 0  # seed")
    params.metadata["tags"] = ["parameters"]
    cells = [nbformat.v4.new_code_cell("import os"), params]
    cells += [nbformat.v4.new_code_cell(c) for c in ((BODY, RAISE, WRITE) if with_output_dir else ("y = seed",))]
    nb.cells = cells
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tree(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _write_nb(nbs / "10_alpha.ipynb")
    _write_nb(nbs / "11_beta.ipynb", with_output_dir=False)
    return nbs, tmp_path / "reports"


def test_unknown_parameters_rejected_before_running(tree, tmp_path):
    nbs, reports = tree
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("defaults:\n  seed: 1\n10_alpha:\n  valeu: 3\n")
    with pytest.raises(ConfigError, match="valeu"):
        runner.run_notebooks(cfg, notebooks=nbs, reports=reports)
    cfg.write_text("defaults:\n  sede: 1\n")
    with pytest.raises(ConfigError, match="sede"):
        runner.run_notebooks(cfg, notebooks=nbs, reports=reports)
    cfg.write_text("99_missing:\n  seed: 1\n")
    with pytest.raises(ConfigError, match="99_missing"):
        runner.run_notebooks(cfg, notebooks=nbs, reports=reports)
    cfg.write_text("10_alpha:\n  value: abc\n")
    with pytest.raises(ConfigError, match="expects float"):
        runner.run_notebooks(cfg, notebooks=nbs, reports=reports)
    assert not (reports / "index.csv").exists()
    assert not list(reports.glob("*/*.ipynb")) if reports.exists() else True


def test_run_writes_notebook_artefacts_and_index(tree, tmp_path):
    nbs, reports = tree
    cfg = tmp_path / "smoke.yaml"
    cfg.write_text("defaults:\n  seed: 3\n10_alpha:\n  value: 2.0\n  label: z\n")
    results = runner.run_notebooks(cfg, notebooks=nbs, reports=reports, echo=lambda *_: None)
    assert [r.status for r in results] == ["ok", "ok"]
    assert (reports / "10_alpha" / "10_alpha-smoke.ipynb").exists()
    metrics = json.loads((reports / "10_alpha" / "smoke" / "metrics.json").read_text())
    assert metrics == {"J": 4.0, "seed": 3, "table": [1, 2], "label": "z"}
    rows = runner.read_index(reports)
    assert [(r["notebook"], r["run"], r["status"]) for r in rows] == [("10_alpha", "smoke", "ok"),
                                                                      ("11_beta", "smoke", "ok")]
    params = json.loads(rows[0]["parameters"])
    assert params["seed"] == 3 and params["value"] == 2.0
    assert params["output_dir"] == str(reports / "10_alpha" / "smoke")
    assert json.loads(rows[0]["metrics"]) == {"J": 4.0, "seed": 3, "label": "z"}   # scalars only
    assert json.loads(rows[1]["parameters"]) == {"seed": 3}           # beta declares only seed
    assert rows[0]["git_rev"] and float(rows[0]["duration_s"]) > 0
    assert not list(reports.glob("*/*.running"))


def test_failing_notebook_names_cell_and_exits_nonzero(tree, capsys):
    nbs, reports = tree
    code = runner.cli(["--notebooks-dir", str(nbs), "--reports-dir", str(reports), "--only", "10",
                       "-p", "fail=true", "--run", "broken"])
    assert code == 1
    err = capsys.readouterr().err
    assert "ValueError: planned failure" in err and "`x = 1`" in err and "cell " in err
    row = runner.read_index(reports)[-1]
    assert row["status"] == "failed" and "planned failure" in row["error"]
    assert (reports / "10_alpha" / "10_alpha-broken.ipynb").exists()   # papermill keeps the partial notebook


def test_killed_runner_is_recorded_and_rerun_completes(tree):
    nbs, reports = tree
    cmd = [sys.executable, "-m", "coprop.cli", "run-notebooks", "--notebooks-dir", str(nbs), "--reports-dir",
           str(reports), "--only", "10_alpha", "--run", "k", "-p", "sleep_s=60"]
    # own session so the SIGKILL takes the runner and its kernel, and nothing else
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = reports / "10_alpha" / "k.running"
    deadline = time.time() + 60
    while time.time() < deadline and not (reports / "10_alpha" / "10_alpha-k.ipynb").exists():
        time.sleep(0.5)   # papermill writes the output notebook once the kernel runs
    assert marker.exists(), "runner never started the notebook"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert marker.exists()
    results = runner.run_notebooks(None, only=["10_alpha"], run="k", notebooks=nbs, reports=reports,
                                   echo=lambda *_: None)
    assert results[0].status == "ok"
    statuses = [(r["run"], r["status"]) for r in runner.read_index(reports)]
    assert statuses == [("k", "killed"), ("k", "ok")]
    assert not marker.exists()
