"""Whole-run recipes: load a dataset, train every stage into one run folder with preset hyper-parameters.

``train_all(data_root, subset, run_dir, preset='demo')`` is what ``coprop demo`` and the notebooks call.
Epoch counts of the demo preset were chosen by measuring wall time on the 2-core CPU (see the docstring
of PRESETS) so the whole run stays within a few minutes.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from coprop.errors import ConfigError
from coprop.models.config import get_config
from coprop.train.loop import TrainParams
from coprop.train.run import is_main_process
from coprop.train.stages import StageResult, finetune_keyframe, prepare, train_baseline, train_keyframe, \
    train_propagator

STAGES = ("keyframe", "keyframe_ft", "propagator", "baseline")

# Per-stage TrainParams overrides. smoke: a handful of steps (tests, notebook defaults). paper: paper 4.2
# (Adam 1e-4, batch 4, 100 epochs) on a GPU. demo: the synthetic demo set (48 MS3-style train clips) on a 2-core
# CPU with the tiny config, sized from measured runs: the tiny models learn per optimizer step rather than per
# sample, so the clip-level stages use batch 1 (the propagator reached val J 0.72 in 5 epochs at batch 1 and
# 0.23 at batch 4 for the same compute). One intra-op thread: on the shared, oversubscribed 2-core machine
# two threads made steps 5-20x slower.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "keyframe": dict(epochs=1, batch_size=2, lr=1e-3, max_steps_per_epoch=3, checkpoint_every=2),
        "keyframe_ft": dict(epochs=1, batch_size=2, lr=5e-4, max_steps_per_epoch=2, checkpoint_every=0),
        "propagator": dict(epochs=1, batch_size=1, lr=1e-3, max_steps_per_epoch=2, checkpoint_every=0),
        "baseline": dict(epochs=1, batch_size=1, lr=1e-3, max_steps_per_epoch=2, checkpoint_every=0),
    },
    "demo": {
        "keyframe": dict(epochs=4, batch_size=4, lr=1e-3, warmup_steps=10, checkpoint_every=50, num_threads=1),
        "keyframe_ft": dict(epochs=2, batch_size=4, lr=3e-4, checkpoint_every=50, num_threads=1),
        "propagator": dict(epochs=8, batch_size=1, lr=1e-3, warmup_steps=10, checkpoint_every=50, num_threads=1),
        "baseline": dict(epochs=5, batch_size=1, lr=1e-3, warmup_steps=10, checkpoint_every=50, num_threads=1),
    },
    "paper": {
        "keyframe": dict(epochs=100, batch_size=4, lr=1e-4, checkpoint_every=500),
        "keyframe_ft": dict(epochs=20, batch_size=4, lr=2e-5, checkpoint_every=500),
        "propagator": dict(epochs=100, batch_size=4, lr=1e-4, checkpoint_every=500),
        "baseline": dict(epochs=100, batch_size=4, lr=1e-4, checkpoint_every=500),
    },
}


def stage_params(preset: str, stage: str, **overrides) -> TrainParams:
    if preset not in PRESETS:
        raise ConfigError(f"unknown training preset {preset!r}; choose one of {sorted(PRESETS)}")
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {list(STAGES)}")
    return TrainParams().replace(**{**PRESETS[preset][stage], **overrides})


def default_run_dir(subset: str, config: str, preset: str, seed: int) -> Path:
    from coprop.paths import runs_dir

    return runs_dir() / f"{subset}-{config}-{preset}-s{seed}"


def load_splits(data_root: str | Path = "", subset: str = "ms3", synthetic_preset: str = "smoke", seed: int = 0,
                splits: Sequence[str] = ("train", "val")) -> dict[str, Any]:
    """``{split: dataset}``; an empty ``data_root`` means the synthetic benchmark of ``synthetic_preset``."""
    from coprop.data import open_dataset
    from coprop.data.synth import resolve_root

    root = resolve_root(data_root or None, synthetic_preset, seed)
    return {s: open_dataset(root, subset, s) for s in splits}


def train_all(data_root: str | Path = "", subset: str = "ms3", run_dir: str | Path | None = None,
              preset: str = "demo", config: str = "tiny", seed: int = 0, stages: Sequence[str] = STAGES,
              synthetic_preset: str | None = None, val_limit: int | None = None, window: int | None = None,
              train_limit: int | None = None,
              stage_overrides: dict[str, dict[str, Any]] | None = None,
              model_overrides: dict[str, Any] | None = None, **overrides) -> dict[str, StageResult]:
    """Train ``stages`` in order into ``run_dir``; returns {stage: StageResult}.

    ``overrides`` (TrainParams fields, e.g. device='cpu', resume=False) apply to every stage,
    ``window``: frames per propagator/baseline sample (default: the shortest clip); ``val_limit`` /
    ``train_limit``: only the first N validation / training clips;
    ``stage_overrides`` ({stage: {field: value}}) to one stage (e.g. {'keyframe_ft': {'epochs': 2}}).
    ``model_overrides``: ModelConfig fields, e.g. {'propagator_weights': 'R50_AOTL_PRE_YTB_DAV.pth'}. With the
    default ``resume=True`` a re-run continues an interrupted stage and skips finished ones quickly.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    synthetic_preset = synthetic_preset or ("smoke" if preset == "smoke" else "demo")
    run_dir = Path(run_dir) if run_dir else default_run_dir(subset, config, preset, seed)
    data = load_splits(data_root, subset, synthetic_preset, seed)
    cfg = get_config(config, **(model_overrides or {}))
    train_set = data["train"] if train_limit is None else \
        [data["train"][i] for i in range(min(train_limit, len(data["train"])))]
    train = prepare(train_set, cfg.image_size, "preparing train clips")
    val_set = data["val"] if val_limit is None else [data["val"][i] for i in range(min(val_limit, len(data["val"])))]
    val = prepare(val_set, cfg.image_size, "preparing val clips") if len(val_set) else None
    if val is not None:
        val.mode, val.class_names = train.mode, train.class_names
    fns = {"keyframe": train_keyframe, "keyframe_ft": finetune_keyframe, "propagator": train_propagator,
           "baseline": train_baseline}
    results: dict[str, StageResult] = {}
    for stage in stages:
        p = stage_params(preset, stage, seed=seed, **{**overrides, **(stage_overrides or {}).get(stage, {})})
        t0 = time.perf_counter()
        kw = {"window": window} if stage in ("propagator", "baseline") else {}
        results[stage] = fns[stage](cfg, train, val, run_dir, params=p, **kw)
        if is_main_process():
            print(f"[train_all] {stage}: {time.perf_counter() - t0:.1f} s -> {results[stage].weights}", flush=True)
    return results
