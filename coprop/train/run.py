"""Run folders: what a training run leaves behind, and ``load_run`` to get the trained models back.

    runs/<name>/
      config.json              ModelConfig, data description, per-stage training parameters and results, git rev
      keyframe.safetensors     stage 1: Keyframe Processor trained on all annotated frames
      keyframe_ft.safetensors  stage 1b: fine-tuned on the keyframe subset
      propagator.safetensors   stage 2: Audio-Insert Propagator
      baseline.safetensors     the simultaneous baseline
      metrics.csv              one row per stage and epoch
      checkpoints/<stage>/     full training state for resume (newest two)
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from coprop.errors import ConfigError, DataError, WeightsError
from coprop.io import write_json
from coprop.models.common import cpu_layout
from coprop.models.config import ModelConfig
from coprop.train.checkpoint import load_weights

CONFIG = "config.json"
WEIGHTS = {"keyframe": "keyframe.safetensors", "keyframe_ft": "keyframe_ft.safetensors",
           "propagator": "propagator.safetensors", "baseline": "baseline.safetensors"}
_HOW = "train it with notebooks/03_train_keyframe / 04_train_propagator or `coprop train STAGE --run-dir DIR`"


def git_revision() -> dict[str, Any]:
    """HEAD and whether the tree has uncommitted changes (read-only git calls)."""
    from coprop.paths import repo_root

    def run(*args):
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=20)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode:
            return {"revision": None}
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return {"revision": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None}


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def read_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DataError(path, "run folder has no config.json", f"not a coprop run folder; {_HOW}")
    try:
        cfg = json.loads(path.read_text())
        ModelConfig.from_dict(cfg["model"])
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        raise DataError(path, f"config.json is unreadable or incomplete ({type(e).__name__}: {e})",
                        f"restore it from the run's checkpoints or {_HOW}") from None
    return cfg


def record_stage(run_dir: str | Path, cfg: ModelConfig, stage: str, info: dict[str, Any],
                 data: dict[str, Any] | None = None) -> Path:
    """Merge one stage's parameters/results into config.json; a different ModelConfig is refused."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    current = read_config(run_dir) if path.is_file() else {}
    if current and current["model"] != cfg.to_dict():
        diff = {k: (current["model"].get(k), v) for k, v in cfg.to_dict().items() if current["model"].get(k) != v}
        raise ConfigError(f"{path}: this run folder was trained with another model config (differences "
                          f"{diff}); use a new run folder for a new config")
    current["model"] = cfg.to_dict()
    current.setdefault("stages", {}).setdefault(stage, {}).update(info)
    if data:
        current["data"] = {**current.get("data", {}), **data}
    current["git"] = git_revision()
    current["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return write_json(path, current)


def build_model(stage: str, cfg: ModelConfig) -> nn.Module:
    """An untrained model of a stage; weights loaded afterwards never need the pretrained files."""
    cfg = cfg.replace(pretrained=False) if hasattr(cfg, "pretrained") else cfg
    if stage in ("keyframe", "keyframe_ft"):
        from coprop.models.keyframe import KeyframeProcessor

        return KeyframeProcessor(cfg, allow_random=True)
    if stage == "baseline":
        from coprop.models.simultaneous import SimultaneousBaseline

        return SimultaneousBaseline(cfg, allow_random=True)
    if stage == "propagator":
        from coprop.models.propagators import build_propagator

        return build_propagator(cfg, allow_random=True)
    raise ConfigError(f"unknown stage {stage!r}; one of {sorted(WEIGHTS)}")


@dataclass
class Run:
    """Trained models of a run folder, in eval mode. ``keyframe`` is the fine-tuned one when it exists."""

    path: Path
    cfg: ModelConfig
    config: dict[str, Any]
    models: dict[str, nn.Module] = field(default_factory=dict)
    # stage -> loader of a model not built yet (load_run(lazy=True)): the demo's tables read cached predictions
    # and need few of the 15 models of three seeds; building and loading all of them took ~10 s per reader
    pending: dict[str, Callable[[], nn.Module]] = field(default_factory=dict)

    def _get(self, stage: str) -> nn.Module | None:
        if stage in self.pending:
            self.models[stage] = self.pending.pop(stage)()
        return self.models.get(stage)

    @property
    def keyframe(self) -> nn.Module | None:
        return self._get("keyframe_ft") or self._get("keyframe")

    @property
    def keyframe_stage1(self) -> nn.Module | None:
        return self._get("keyframe")

    @property
    def propagator(self) -> nn.Module | None:
        return self._get("propagator")

    @property
    def baseline(self) -> nn.Module | None:
        return self._get("baseline")

    @property
    def stages(self) -> list[str]:
        return [s for s in WEIGHTS if s in self.models or s in self.pending]

    def require(self, stage: str) -> nn.Module:
        """The model of ``stage`` or an error that says how to train it."""
        model = self.keyframe if stage == "keyframe" else self._get(stage)
        if model is None:
            raise WeightsError(f"{self.path / WEIGHTS.get(stage, stage)}: run has no trained {stage} "
                               f"(it has {self.stages or 'none'}); {_HOW}")
        return model

    def metrics(self):
        """metrics.csv as a DataFrame (empty when the run has none yet)."""
        import pandas as pd

        path = self.path / "metrics.csv"
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def load_run(run_dir: str | Path, stages: list[str] | None = None, device: str | torch.device = "cpu",
             lazy: bool = False) -> Run:
    """Rebuild the models of a run folder from config.json and load their weights (``lazy``: each model on its
    first use; a missing weight file of a requested stage is an error at once either way)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "run folder does not exist", _HOW)
    config = read_config(run_dir)
    cfg = ModelConfig.from_dict(config["model"])
    present = [s for s, f in WEIGHTS.items() if (run_dir / f).is_file()]
    wanted = present if stages is None else list(stages)
    if not present:
        raise DataError(run_dir, f"run folder has no trained weights ({', '.join(WEIGHTS.values())})", _HOW)
    run = Run(path=run_dir, cfg=cfg, config=config)
    for stage in wanted:
        path = run_dir / WEIGHTS[stage] if stage in WEIGHTS else None
        if path is None or not path.is_file():
            raise WeightsError(f"{path or run_dir / stage}: no trained {stage} in this run; {_HOW}")
        run.pending[stage] = partial(_load_model, stage, cfg, path, device)
        if not lazy:
            run._get(stage)
    return run


def _load_model(stage: str, cfg: ModelConfig, path: Path, device) -> nn.Module:
    model = build_model(stage, cfg)
    load_weights(path, model)
    return cpu_layout(model.to(device).eval())
