"""Every notebook in notebooks/ runs through the runner (papermill) with configs/smoke.yaml and leaves artefacts.

nbval (``--nbval-lax --nbval-current-env``) runs the same notebooks with their default parameters when plain
``pytest`` collects ``notebooks/`` (see [tool.pytest.ini_options] in pyproject.toml).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from coprop import runner
from coprop.paths import repo_root

NOTEBOOKS = runner.list_notebooks(repo_root() / "notebooks")
SMOKE = repo_root() / "configs" / "smoke.yaml"

# artefacts a notebook must leave (beyond metrics.json); notebooks not listed need at least one table or figure
EXPECTED = {
    "00_walkthrough": ["audio.png", "control_points.png", "keyframes.png", "propagation.png", "masks_vs_gt.png",
                       "walkthrough_scores.csv"],
    "05_ablations": [f"table{t}.{ext}" for t in ("1", "2a", "2b", "4", "5", "6") for ext in ("csv", "md")]
                    + ["fig4_plug_and_play.png"],
    "06_alignment": ["alignment_rates.csv", "alignment_rates.md", "fig3_alignment.png", "timelines.png"],
}


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke(nb, tmp_path):
    results = runner.run_notebooks(SMOKE, only=[nb.stem], run="smoke", reports=tmp_path, progress_bar=False,
                                   echo=lambda *_: None)
    res = results[0]
    assert res.status == "ok", f"{nb.stem} failed at {res.error}"
    assert res.output_notebook.exists()
    out = res.output_dir
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics.get("data") in {"synthetic", "avsbench"}
    for name in EXPECTED.get(nb.stem, []):
        assert (out / name).exists(), f"{nb.stem} did not write {name}"
    assert list(out.glob("*.csv")) or list(out.glob("*.png")), f"{nb.stem} wrote no table or figure"
    assert runner.read_index(tmp_path)[-1]["status"] == "ok"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_paired_and_parameterised(nb):
    """The .py (jupytext py:percent) and .ipynb hold the same code, and the parameters cell follows the rules."""
    import jupytext
    import papermill

    py = nb.with_suffix(".py")
    assert py.exists(), f"{nb.name} has no paired {py.name}"
    code = lambda n: [c.source.strip() for c in n.cells if c.cell_type == "code"]  # noqa: E731
    assert code(jupytext.read(py)) == code(jupytext.read(nb)), f"run `jupytext --sync {py}`"
    params = papermill.inspect_notebook(str(nb))
    for name in ("data_root", "synthetic_preset", "output_dir", "seed"):
        assert name in params, f"{nb.stem} lacks the standard parameter {name!r}"
    # papermill skips (with only a warning) any parameter line it cannot parse, e.g. one with '=' in its
    # comment: that parameter then loses its type and help in `papermill --help-notebook`
    unparsed = set(runner._declared(nb)) - set(params)
    assert not unparsed, f"{nb.stem}: papermill cannot parse the parameter line(s) of {sorted(unparsed)}"
    assert jupytext.read(nb).metadata["kernelspec"]["name"] == "python3"
