"""Fault test: a training process killed with SIGKILL mid-epoch resumes from its last checkpoint and ends
with the same weights as a run that was never interrupted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coprop.train.checkpoint import list_checkpoints, load_state

TOY = Path(__file__).parent / "train_toy.py"


def _train(out: Path, step_sleep: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COPROP_HEADLESS": "1"}
    return subprocess.Popen([sys.executable, str(TOY), str(out), str(step_sleep)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref_proc = _train(ref)
    proc = _train(killed, step_sleep=0.25)   # slow steps so the kill lands mid-run
    ck_dir = killed / "checkpoints" / "toy"
    deadline = time.time() + 120
    while not list_checkpoints(ck_dir):
        assert proc.poll() is None, f"training ended before its first checkpoint:\n{proc.stdout.read()}"
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    last = list_checkpoints(ck_dir)[0]
    progress = load_state(last)["progress"]
    assert progress["global_step"] < 18, "the run finished before it was killed"
    assert not (killed / "final.safetensors").exists()

    resumed = _train(killed)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    ref_out, _ = ref_proc.communicate(timeout=300)
    assert ref_proc.returncode == 0, ref_out

    a, b = load_file(ref / "final.safetensors"), load_file(killed / "final.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    # the resumed process really resumed (and from a mid-run checkpoint), it did not start over
    from safetensors import safe_open

    with safe_open(str(killed / "final.safetensors"), "pt") as f:
        assert "step-" in f.metadata()["meta"]
