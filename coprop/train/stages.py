"""The training stages of Co-Prop (paper 3.3, 4.2) and the baseline, each writing into one run folder.

    train_keyframe      Keyframe Processor on every annotated frame
    finetune_keyframe   the same model on the keyframe subset (frames where GT control points are 1)
    train_propagator    Audio-Insert Propagator: GT keyframe mask, propagate, loss on following annotated frames
    train_baseline      simultaneous baseline on whole clips
    train_all           all four on one dataset with a preset (smoke / demo / paper)

``train_clips``/``val_clips`` are Sequences of Clip (``coprop.data.open_dataset``) or lists of
PreparedClip (from ``prepare_clips``; pass them to share the decoding between stages).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from coprop.errors import ConfigError
from coprop.models.config import ModelConfig, get_config
from coprop.train import tasks
from coprop.train.checkpoint import load_matching, load_submodule, load_weights, save_weights
from coprop.train.data import (ClipSamples, FrameSamples, PreparedClip, PropagationSamples, is_keyframe,
                               prepare_clips)
from coprop.train.loop import FitResult, TrainParams, fit, seed_everything
from coprop.train.run import WEIGHTS, build_model, is_main_process, record_stage


@dataclass
class StageResult:
    stage: str
    model: nn.Module
    weights: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0               # whole stage: data preparation, training, validation, saving
    train_time_s: float = 0.0         # optimizer steps only (summed over resumes)
    samples_per_s: float = float("nan")
    num_samples: int = 0              # training samples per epoch

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


@dataclass
class DataInfo:
    mode: str
    num_classes: int
    description: dict[str, Any]


def data_info(clips: Sequence) -> DataInfo:
    """Binary or semantic, and the class count, from a dataset (or its first clip)."""
    mode = getattr(clips, "mode", None)
    if mode is None:
        first = clips[0]
        mode = first.mode if hasattr(first, "mode") else \
            ("semantic" if any(c.masks.max() > 1 for c in clips) else "binary")
    names = getattr(clips, "class_names", None)
    num_classes = 1 if mode == "binary" else (len(names) if names else 71)
    desc = {"mode": mode, "num_classes": num_classes}
    for attr in ("subset", "split"):
        if hasattr(clips, attr):
            desc[attr] = getattr(clips, attr)
    if hasattr(clips, "root"):
        from coprop.data.synth import is_synthetic

        desc["root"] = str(Path(clips.root).resolve())
        # recorded so that `coprop infer` can warn when a synthetic-trained run meets a real video
        desc["synthetic"] = is_synthetic(clips.root)
    return DataInfo(mode, num_classes, desc)


class _Prepared(list):
    """A list of PreparedClip that remembers the mode of the dataset it came from."""

    mode: str = "binary"
    class_names: list[str] | None = None


def prepare(clips: Sequence, image_size: int, desc: str = "preparing clips") -> _Prepared:
    """Decode and resize once; the result can be passed to every stage."""
    if isinstance(clips, _Prepared):
        return clips
    info = data_info(clips)
    already = len(clips) > 0 and all(isinstance(c, PreparedClip) for c in clips)
    out = _Prepared(clips if already else prepare_clips(clips, image_size, desc))
    out.mode, out.class_names = info.mode, getattr(clips, "class_names", None)
    for attr in ("subset", "split", "root"):
        if hasattr(clips, attr):
            setattr(out, attr, getattr(clips, attr))
    return out


def _setup(cfg: ModelConfig | str, train_clips: Sequence, val_clips: Sequence | None):
    cfg = get_config(cfg)
    if cfg.guidance != "audio":
        raise ConfigError(f"coprop.train trains audio-guided models only (config guidance={cfg.guidance!r}): the "
                          "datasets give no single category label per frame for the text-guided variant")
    info = data_info(train_clips)
    if cfg.num_classes != info.num_classes:
        cfg = cfg.replace(num_classes=info.num_classes)
    train = prepare(train_clips, cfg.image_size, "preparing train clips")
    val = prepare(val_clips, cfg.image_size, "preparing val clips") if val_clips is not None and len(val_clips) else None
    if train and train[0].frames.shape[1] != cfg.image_size:
        raise ConfigError(f"prepared clips are {train[0].frames.shape[1]} px but the config wants {cfg.image_size}")
    return cfg, info, train, val


def _identity(info: DataInfo) -> dict[str, Any]:
    """What the training data was, for the checkpoint signature."""
    return {"data": {k: info.description.get(k) for k in ("root", "subset", "split", "mode", "num_classes")}}


def _params(params: TrainParams | None, epochs: int | None, overrides: dict[str, Any]) -> TrainParams:
    p = params or TrainParams()
    if epochs is not None:
        overrides = {**overrides, "epochs": epochs}
    return p.replace(**overrides) if overrides else p


def _finish(stage: str, run_dir: Path, cfg: ModelConfig, info: DataInfo, p: TrainParams, res: FitResult,
            model: nn.Module, t0: float, n: int, extra: dict[str, Any] | None = None) -> StageResult:
    path = run_dir / WEIGHTS[stage]
    wall = time.perf_counter() - t0
    summary = {"params": p.to_dict(), "num_samples": n, "wall_s": wall, "train_time_s": res.train_time_s,
               "samples_per_s": res.samples_per_s, "final": res.last, **(extra or {})}
    if is_main_process():
        save_weights(path, model, {"stage": stage, "model": cfg.to_dict(), "final": res.last})
        record_stage(run_dir, cfg, stage, summary, info.description)
    return StageResult(stage, model, path, res.history, wall, res.train_time_s, res.samples_per_s, n)


def train_keyframe(cfg: ModelConfig | str = "tiny", train_clips: Sequence = (), val_clips: Sequence | None = None,
                   run_dir: str | Path = "runs/keyframe", epochs: int | None = None,
                   params: TrainParams | None = None, **overrides) -> StageResult:
    """Stage 1: the Keyframe Processor on every annotated frame of ``train_clips``."""
    return _train_frames("keyframe", cfg, train_clips, val_clips, run_dir, epochs, params, overrides)


def finetune_keyframe(cfg: ModelConfig | str = "tiny", train_clips: Sequence = (),
                      val_clips: Sequence | None = None, run_dir: str | Path = "runs/keyframe",
                      epochs: int | None = None, params: TrainParams | None = None,
                      init: str | Path | nn.Module | None = None, **overrides) -> StageResult:
    """Stage 1b: continue from ``init`` (default: the run's keyframe.safetensors) on the keyframe subset."""
    return _train_frames("keyframe_ft", cfg, train_clips, val_clips, run_dir, epochs, params, overrides,
                         init=init if init is not None else Path(run_dir) / WEIGHTS["keyframe"])


def _train_frames(stage, cfg, train_clips, val_clips, run_dir, epochs, params, overrides, init=None):
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    p = _params(params, epochs, overrides)
    cfg, info, train, val = _setup(cfg, train_clips, val_clips)
    select = is_keyframe if stage == "keyframe_ft" else None
    dataset = FrameSamples(train, seed=p.seed, select=select)
    seed_everything(p.seed)
    model = _model("keyframe", cfg)
    if isinstance(init, nn.Module):
        model.load_state_dict(init.state_dict())
    elif init is not None:
        load_weights(init, model)
    step = tasks.KeyframeStep(model, cfg.num_classes)
    evaluate = (lambda m: tasks.evaluate_keyframe(m.model, val, info.mode, cfg.num_classes)) if val else None
    res = fit(step, dataset, lambda net, b: net(b), p, run_dir, stage, evaluate=evaluate,
              identity=_identity(info))
    return _finish(stage, run_dir, cfg, info, p, res, model, t0, len(dataset),
                   {"init": str(init) if init is not None and not isinstance(init, nn.Module) else None})


def train_propagator(cfg: ModelConfig | str = "tiny", train_clips: Sequence = (),
                     val_clips: Sequence | None = None, run_dir: str | Path = "runs/propagator",
                     epochs: int | None = None, params: TrainParams | None = None, window: int | None = None,
                     within_segment: bool = True, init_backbone: str | Path | None = "auto",
                     init_weights: str | Path | None = None, **overrides) -> StageResult:
    """Stage 2: propagate a GT keyframe mask over the following frames (``window`` frames, default the
    shortest clip), loss on the annotated ones of the same segment.

    ``init_backbone``: weight file whose ``backbone.*`` initialises the propagator's image encoder; 'auto'
    = the run's keyframe model when it exists (it stands in for the pretrained AOT encoder of paper 4.2,
    which the tiny config does not have), None = the config's own initialisation. ``init_weights``: a propagator
    weight file (e.g. the plain-AOT one) to start every tensor it holds from, the way paper 4.2 starts the
    Audio-Insert Propagator from AOT; the audio insertion layers keep their initialisation (replaces
    ``init_backbone``). The ``r50_aotl``
    propagator (``paper`` config) always keeps the encoder of the AOT checkpoint it was built from.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    p = _params(params, epochs, overrides)
    cfg, info, train, val = _setup(cfg, train_clips, val_clips)
    dataset = PropagationSamples(train, info.mode, window=window, seed=p.seed, max_objects=cfg.max_objects,
                                 within_segment=within_segment)
    if len(dataset) == 0:
        raise ConfigError("no training clip has an annotated frame after a keyframe within its segment "
                          "(S4's train split annotates frame 0 only): train the propagator on MS3 or AVSS")
    seed_everything(p.seed)
    model = _model("propagator", cfg)
    if getattr(cfg, "propagator", "coprop") == "r50_aotl":
        # paper 4.2: it starts from the AOT checkpoint's own encoder; a keyframe model's backbone (PVT-v2, or a
        # ResNet-50 to stride 32) is not AOT's encoder, so init_backbone does not apply (recorded as the AOT file)
        backbone_from = getattr(model, "loaded_from", None)
    elif init_weights is not None:
        load_matching(init_weights, model)
        backbone_from = str(init_weights)
    else:
        backbone_from = _init_backbone(model, init_backbone, run_dir)
    step = tasks.PropagatorStep(model, info.mode)
    evaluate = (lambda m: tasks.evaluate_propagator(m.model, val, info.mode, cfg.num_classes, cfg.max_objects)) \
        if val else None
    res = fit(step, dataset, lambda net, b: net(b), p, run_dir, "propagator", evaluate=evaluate,
              identity=_identity(info), collate=dataset.collate)
    return _finish("propagator", run_dir, cfg, info, p, res, model, t0, len(dataset),
                   {"window": dataset.window, "within_segment": within_segment, "init_backbone": backbone_from})


def published_propagator(cfg: ModelConfig | str, run_dir: str | Path) -> Path:
    """The "AOT" rows of Tables 2a/5 with the ``paper`` config: the released R50-AOTL, unmodified (not trained),
    written as the run's propagator. ``cfg`` must have ``propagator='r50_aotl'`` and ``audio_insert_levels=0``
    (ConfigError otherwise); the AOT file comes from ``cfg.propagator_weights`` or the pretrained folder
    (WeightsError when absent). Returns the weights path."""
    from coprop.models.propagators import build_propagator

    cfg = get_config(cfg)
    if cfg.propagator != "r50_aotl" or cfg.audio_insert_levels != 0:
        raise ConfigError(f"the published AOT needs propagator='r50_aotl' and audio_insert_levels=0, got "
                          f"{cfg.propagator!r} with {cfg.audio_insert_levels} levels")
    model = build_propagator(cfg.replace(pretrained=True))
    path = Path(run_dir) / WEIGHTS["propagator"]
    if is_main_process():
        save_weights(path, model, {"stage": "propagator", "model": cfg.to_dict(), "published": model.loaded_from})
        record_stage(run_dir, cfg, "propagator", {"published": model.loaded_from, "trained": False})
    return path


def train_baseline(cfg: ModelConfig | str = "tiny", train_clips: Sequence = (), val_clips: Sequence | None = None,
                   run_dir: str | Path = "runs/baseline", epochs: int | None = None,
                   params: TrainParams | None = None, window: int | None = None,
                   init_backbone: str | Path | None = "auto", init_weights: str | Path | None = None,
                   **overrides) -> StageResult:
    """The simultaneous baseline on whole clips (windows of ``window`` frames, default the shortest clip).

    ``init_backbone`` as for train_propagator, so both start from the same image encoder. ``init_weights``: a
    Keyframe Processor weight file of the same config to start every tensor it holds from (the baseline is that
    model plus a temporal embedding), so the baseline begins where the keyframe model ends (replaces
    ``init_backbone``).
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    p = _params(params, epochs, overrides)
    cfg, info, train, val = _setup(cfg, train_clips, val_clips)
    dataset = ClipSamples(train, window=window, seed=p.seed)
    seed_everything(p.seed)
    model = _model("baseline", cfg)
    if init_weights is not None:
        load_matching(init_weights, model)
        backbone_from = str(init_weights)
    else:
        backbone_from = _init_backbone(model, init_backbone, run_dir)
    step = tasks.BaselineStep(model, cfg.num_classes)
    evaluate = (lambda m: tasks.evaluate_baseline(m.model, val, info.mode, cfg.num_classes)) if val else None
    res = fit(step, dataset, lambda net, b: net(b), p, run_dir, "baseline", evaluate=evaluate,
              identity=_identity(info))
    return _finish("baseline", run_dir, cfg, info, p, res, model, t0, len(dataset),
                   {"window": dataset.window, "init_backbone": backbone_from})


def _init_backbone(model: nn.Module, init: str | Path | None, run_dir: Path) -> str | None:
    if init is None:
        return None
    if init == "auto":
        found = [run_dir / WEIGHTS[s] for s in ("keyframe_ft", "keyframe") if (run_dir / WEIGHTS[s]).is_file()]
        if not found:
            return None
        init = found[0]
    load_submodule(init, model, "backbone.")
    return str(init)


def _model(stage: str, cfg: ModelConfig) -> nn.Module:
    return _pretrained(stage, cfg) if getattr(cfg, "pretrained", False) else build_model(stage, cfg)


def _pretrained(stage: str, cfg: ModelConfig) -> nn.Module:
    """Initial weights from the local pretrained files the config names (missing file: WeightsError)."""
    if stage == "keyframe":
        from coprop.models.keyframe import KeyframeProcessor

        return KeyframeProcessor(cfg)
    if stage == "baseline":
        from coprop.models.simultaneous import SimultaneousBaseline

        return SimultaneousBaseline(cfg)
    from coprop.models.propagators import build_propagator

    # the 'paper' propagator (r50_aotl) starts from the released AOT checkpoint here (paper 4.2)
    return build_propagator(cfg)
