"""No committed file under reports/ names the machine it was made on, and no report shows a bare PosixPath.

``test_committed_reports_*`` scan what git tracks under reports/ (the files a reader gets);
``test_runner_writes_repo_relative_paths`` checks the code that writes them, on a fresh run in a scratch
repository root (``COPROP_ROOT``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from coprop.paths import repo_root

TEXT = {".ipynb", ".json", ".csv", ".md", ".txt", ".yaml", ".yml", ".log"}
# an absolute POSIX path into a typical machine folder, or a Windows drive path; not preceded by a word
# character or a dot, so relative paths such as reports/data/... or ./tmp/... do not count
ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:home|root|tmp|work|Users|mnt|srv|opt|var|private|scratch)/|\b[A-Z]:\\\\")


def committed_report_files() -> list[Path]:
    root = repo_root()
    try:
        out = subprocess.run(["git", "ls-files", "-z", "reports"], cwd=root, capture_output=True, check=True,
                             timeout=30).stdout
        files = [root / f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.SubprocessError):   # not a git checkout: every file under reports/ but scratch
        files = [p for p in (root / "reports").rglob("*") if p.is_file() and "_scratch" not in p.parts]
    return [f for f in files if f.suffix in TEXT and f.exists()]


def _offences(text: str) -> list[str]:
    hits = [m.group(0) for m in ABSOLUTE.finditer(text)]
    here = str(repo_root().resolve())
    if here in text:
        hits.append(here)
    return hits


def test_committed_reports_hold_no_absolute_paths():
    files = committed_report_files()
    assert files, "no committed report files found under reports/"
    bad = {}
    for f in files:
        hits = _offences(f.read_text(errors="replace"))
        if hits:
            bad[str(f.relative_to(repo_root()))] = sorted(set(hits))[:3]
    assert not bad, f"absolute paths in committed reports (write them with coprop.paths.display_path): {bad}"


def test_committed_reports_show_no_bare_posixpath():
    bad = []
    for f in committed_report_files():
        if f.suffix != ".ipynb":
            continue
        for i, cell in enumerate(nbformat.read(str(f), as_version=4).cells):
            for o in cell.get("outputs", []):
                text = o.get("text", "") + o.get("data", {}).get("text/plain", "")
                if "PosixPath(" in text:
                    bad.append(f"{f.relative_to(repo_root())} cell {i}")
    assert not bad, f"cells whose output is a bare PosixPath(...): {bad}"


PARAMS = 'output_dir: str = "reports/_scratch/x"  # artefacts'
BODY = '''from coprop.paths import repo_root
from coprop.reports import RunOutput
out = RunOutput(output_dir)
out.metrics(data_dir=str(repo_root() / "data" / "x"))
import pandas as pd
out.table(pd.DataFrame({"m": ["a"], "J %": [1.0]}), "t", caption=f"from {repo_root() / 'data' / 'x.csv'}")'''


@pytest.mark.notebook
def test_runner_writes_repo_relative_paths(tmp_path, monkeypatch):
    from coprop import runner

    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    monkeypatch.setenv("COPROP_ROOT", str(root))   # the runner and the kernel both take the repo root from it
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(BODY)]
    nbformat.write(nb, str(root / "notebooks" / "10_x.ipynb"))
    old = root / "reports" / "old" / "old-demo.ipynb"   # a row written before paths were made relative
    runner.append_index(root / "reports", {"notebook": "old", "run": "demo", "notebook_path": str(old)})
    res = runner.run_notebooks(None, run="demo", notebooks=root / "notebooks", reports=root / "reports",
                               progress_bar=False, echo=lambda *_: None)[0]
    assert res.status == "ok", res.error
    assert res.output_notebook == root / "reports" / "10_x" / "10_x-demo.ipynb"
    book = nbformat.read(str(res.output_notebook), as_version=4)
    assert book.metadata.papermill.input_path == "notebooks/10_x.ipynb"
    assert book.metadata.papermill.output_path == "reports/10_x/10_x-demo.ipynb"
    assert book.metadata.papermill.parameters["output_dir"] == "reports/10_x/demo"
    assert "jupytext" not in book.metadata
    assert runner.read_index(root / "reports")[0]["notebook_path"] == "reports/old/old-demo.ipynb"
    row = runner.read_index(root / "reports")[-1]
    assert (row["notebook_path"], row["output_dir"]) == ("reports/10_x/10_x-demo.ipynb", "reports/10_x/demo")
    assert json.loads((root / "reports" / "10_x" / "demo" / "metrics.json").read_text())["data_dir"] == "data/x"
    for f in (root / "reports").rglob("*"):
        if f.is_file() and f.suffix in TEXT:
            assert str(root) not in f.read_text(), f"{f} names the machine's path"
    assert os.environ["COPROP_ROOT"] == str(root)
