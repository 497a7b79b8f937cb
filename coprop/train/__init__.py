"""Training: Keyframe Processor (all annotated frames, then the keyframe subset), Audio-Insert Propagator,
simultaneous baseline; checkpoints with exact resume, AMP on GPU, DDP under torchrun; run folders.

    from coprop.train import train_all, load_run
    results = train_all(data_root="", subset="ms3", run_dir="runs/demo", preset="demo")
    run = load_run("runs/demo")          # run.keyframe, run.propagator, run.baseline, run.cfg
"""
from coprop.train.cli import cli
from coprop.train.loop import FitResult, TrainParams, fit
from coprop.train.recipes import PRESETS, STAGES, default_run_dir, load_splits, stage_params, train_all
from coprop.train.run import Run, load_run
from coprop.train.stages import (StageResult, finetune_keyframe, prepare, train_baseline, train_keyframe,
                                 train_propagator)

__all__ = ["cli", "fit", "FitResult", "TrainParams", "PRESETS", "STAGES", "default_run_dir", "load_splits", "stage_params",
           "train_all", "Run", "load_run", "StageResult", "finetune_keyframe", "prepare", "train_baseline",
           "train_keyframe", "train_propagator"]
