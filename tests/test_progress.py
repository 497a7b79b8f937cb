"""Headless only when the runner, papermill, the tests or CI say so; a plain Jupyter kernel gets the live widget.

The kernel tests start real ipykernel kernels with an environment that holds none of the signals (no CI, no
COPROP_HEADLESS, no PYTEST_CURRENT_TEST), so only the launcher decides: a plain jupyter_client program (as
JupyterLab is) -> live widget; papermill -> the static picture.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import nbformat
import pytest

from coprop import progress

VIEWER_CODE = textwrap.dedent("""
    import numpy as np
    from coprop.data.clip import Clip, avsbench_frame_times
    from coprop.progress import headless
    from coprop.widgets import Viewer
    T = 3
    masks = np.zeros((T, 8, 8), np.int64); masks[:, 2:5, 2:5] = 1
    clip = Clip(np.full((T, 8, 8, 3), 90, np.uint8), np.zeros(16000 * T, np.float32), avsbench_frame_times(T),
                masks, np.ones(T, bool), {"name": "toy", "mode": "binary"})
    print("HEADLESS", headless())
    Viewer(clip, {"m": masks}, control_points=[1, 0, 1], per_frame_j={"m": [1.0, 0.5, np.nan]})
""")

LAUNCHER = textwrap.dedent("""
    import json, sys
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    outs = []
    try:
        kc.execute_interactive(sys.argv[1], output_hook=lambda m: outs.append(m), timeout=120)
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
    mimes = sorted({k for m in outs for k in m["content"].get("data", {})})
    text = "".join(m["content"].get("text", "") for m in outs)
    errors = [m["content"].get("evalue") for m in outs if m["msg_type"] == "error"]
    print(json.dumps({"mimes": mimes, "text": text, "errors": errors}))
""")


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("CI", "COPROP_HEADLESS", "PYTEST_CURRENT_TEST")}


def test_signals(monkeypatch):
    monkeypatch.setenv("COPROP_HEADLESS", "1")
    assert progress.headless()
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("COPROP_HEADLESS", "0")
    assert not progress.headless()                  # an explicit 0 wins over CI
    monkeypatch.delenv("COPROP_HEADLESS")
    assert progress.headless()                      # CI
    monkeypatch.setenv("CI", "false")
    assert progress.headless()                      # still inside a test (PYTEST_CURRENT_TEST)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert not progress.in_kernel() and not progress.headless()   # a plain process, no signal


def test_launcher_program(tmp_path):
    script = tmp_path / "papermill"
    script.write_text("import time; time.sleep(30)\n")
    procs = [subprocess.Popen([sys.executable, "-u", str(script)]),
             subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        assert progress.launcher_program(procs[0].pid) == "papermill"
        assert progress.launcher_program(procs[1].pid) == "http"
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.slow
@pytest.mark.notebook
def test_plain_kernel_gets_the_widget_papermill_the_picture(tmp_path):
    launcher = tmp_path / "lab_like.py"   # any program that is not a batch executor, as JupyterLab's server
    launcher.write_text(LAUNCHER)
    run = subprocess.run([sys.executable, str(launcher), VIEWER_CODE], env=_clean_env(), capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert not got["errors"], got["errors"]
    assert "HEADLESS False" in got["text"]
    assert "application/vnd.jupyter.widget-view+json" in got["mimes"] and "image/png" not in got["mimes"]

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(VIEWER_CODE)]
    src, out = tmp_path / "v.ipynb", tmp_path / "v-out.ipynb"
    nbformat.write(nb, str(src))
    run = subprocess.run([sys.executable, "-m", "papermill", str(src), str(out), "-k", "python3",
                          "--no-progress-bar"], env=_clean_env(), capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    outputs = nbformat.read(str(out), as_version=4).cells[0].outputs
    mimes = {k for o in outputs for k in o.get("data", {})}
    assert "HEADLESS True" in "".join(o.get("text", "") for o in outputs)
    assert "image/png" in mimes and "application/vnd.jupyter.widget-view+json" not in mimes
