"""Notebook 02 through papermill: offline (no backend) and against a loopback chat server (http backend)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from rcpg_util import FakeChatServer

from coprop.paths import repo_root

NB = repo_root() / "notebooks" / "02_prompt_engineering.ipynb"


def _run(tmp_path, **params):
    import papermill

    out = tmp_path / "out"
    papermill.execute_notebook(str(NB), str(tmp_path / "nb.ipynb"), kernel_name="python3", progress_bar=False,
                               parameters={"output_dir": str(out), **params})
    return out, json.loads((tmp_path / "nb.ipynb").read_text())


@pytest.mark.slow
@pytest.mark.notebook
def test_nb02_offline(tmp_path, synth_root):
    out, nb = _run(tmp_path, data_root=str(synth_root))
    table = pd.read_csv(out / "control_points_table2b.csv")
    assert list(table.method) == ["Cosine", "Learned (offline)", "1-step", "3-step", "RCPG (3-step + retrieval)",
                                  "GT oracle"]
    oracle = table[table.method == "GT oracle"].iloc[0]
    assert oracle["f1@0"] == 1.0 and oracle["exact"] == 1.0
    assert table[table.method == "RCPG (3-step + retrieval)"]["note"].iloc[0].startswith("not run")
    assert (out / "category_f1.png").exists() and (out / "control_points_scores.md").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "none" and metrics["data"] == "synthetic" and "f1@1/Cosine" in metrics
    text = json.dumps(nb)
    assert "No LLM backend configured" in text and "===== 3-step+retrieval =====" in text


@pytest.mark.slow
@pytest.mark.notebook
def test_nb02_http_backend(tmp_path, synth_root):
    with FakeChatServer(final_answer="[1, 0, 0, 0, 0]") as srv:
        out, nb = _run(tmp_path, data_root=str(synth_root), backend="http", base_url=srv.base_url,
                       model_name="fake-qwen", cache_dir=str(tmp_path / "cache"))
        n_requests = len(srv.requests)
    table = pd.read_csv(out / "control_points_table2b.csv")
    rows = table.set_index("method")
    for m in ("1-step", "3-step", "RCPG (3-step + retrieval)"):
        assert rows.loc[m, "clips"] > 0 and not isinstance(rows.loc[m, "note"], str)
    metrics = json.loads((out / "metrics.json").read_text())
    rep = metrics["llm_reports"]["RCPG (3-step + retrieval)"]
    assert rep["rcpg_llm"] == metrics["clips"] and rep.get("rcpg_fallback", 0) == 0
    # 1-step: 1 request per clip; 3-step: 3; RCPG reuses the cached first two turns of 3-step: 1 more
    assert n_requests == 5 * metrics["clips"]
    assert rep["backend_cache_hits"] >= 2 * metrics["clips"]
