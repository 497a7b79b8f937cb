"""Shared fixtures. Tests build their own tiny data; nothing is downloaded."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COPROP_HEADLESS", "1")
# One thread per process: the tiny models gain nothing from more, and notebook kernels and subprocesses
# started by the tests then don't oversubscribe CI's two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REAL_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real-clips"


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def real_clips() -> list[Path]:
    """The four real AVSBench demo videos in ../shared/fixtures/real-clips (skip when absent)."""
    clips = sorted(REAL_CLIPS.glob("*.mp4"))
    if not clips:
        pytest.skip(f"real-clip fixtures not found at {REAL_CLIPS} (a checkout outside the project's CI)")
    return clips


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A smoke-sized synthetic benchmark (S4-, MS3- and AVSS-style trees), generated once per session."""
    from coprop.data.synth import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, preset="smoke", seed=0)
    return root
