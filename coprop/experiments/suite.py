"""The model suite of one training seed: which models it holds (``VARIANTS``), how big it is trained
(``SUITES``), training whatever is missing (``ensure_suite``), and loading it (``Suite``).

    <run_dir>/seed0/main/   keyframe (all frames) + keyframe_ft (keyframe subset) + propagator (4 insert levels)
                            + simultaneous baseline          -- coprop.train stage functions, one ModelConfig
    <run_dir>/seed0/aip1/   propagator with audio insertion at the deepest level only  (Table 5 '1-layer')
    <run_dir>/seed0/aot/    propagator without audio insertion = plain AOT              (Tables 2a, 5)
                            (paper config: the released R50-AOTL weights, not trained)
    <run_dir>/seed0/text/   text-guided Keyframe Processor (a category label instead of audio, Table 4)
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from coprop.controlpoints.detectors import frame_labels
from coprop.errors import ConfigError
from coprop.experiments.clips import Data
from coprop.experiments.settings import pick_device, resolve_path


# Per suite preset: model input size, and overrides of coprop.train.PRESETS[<suite>] per stage. The demo sizes
# keep all 8 models of a suite within about 5 minutes on the 2-core CPU with one torch thread (coprop demo's
# 20-minute budget covers data, training, evaluation and every notebook).
SUITES: dict[str, dict[str, Any]] = {
    "smoke": dict(image_size=64, max_train_clips=None, train={}),
    "demo": dict(image_size=64, max_train_clips=None, train={
        "keyframe": dict(epochs=6, checkpoint_every=30),
        "keyframe_ft": dict(epochs=4, checkpoint_every=0),
        "propagator": dict(epochs=10, checkpoint_every=12),
        "baseline": dict(epochs=10, checkpoint_every=12)}),
    "paper": dict(image_size=None, max_train_clips=None, train={}),   # None: the model config's size (224)
}
VARIANTS: dict[str, dict[str, Any]] = {
    "main": dict(cfg=dict(audio_insert_levels=4), stages=("keyframe", "keyframe_ft", "propagator", "baseline")),
    "aip1": dict(cfg=dict(audio_insert_levels=1), stages=("propagator",)),
    "aot": dict(cfg=dict(audio_insert_levels=0), stages=("propagator",)),
    "text": dict(cfg=dict(guidance="text"), stages=("keyframe", "keyframe_ft")),
}


def suite_config(model_config: str, suite: str, variant: str, num_text_labels: int = 0):
    from coprop.models.config import get_config

    if suite not in SUITES:
        raise ConfigError(f"unknown suite {suite!r}; choose one of {sorted(SUITES)}")
    over = dict(VARIANTS[variant]["cfg"])
    if SUITES[suite]["image_size"]:
        over["image_size"] = SUITES[suite]["image_size"]
    if variant == "text":
        over["num_text_labels"] = max(1, num_text_labels)
    return get_config(model_config, **over)


def _finished(run: Path, stage: str) -> bool:
    from coprop.train.run import CONFIG, WEIGHTS

    if not (run / WEIGHTS[stage]).is_file() or not (run / CONFIG).is_file():
        return False
    return stage in json.loads((run / CONFIG).read_text()).get("stages", {})


def ensure_suite(run_dir: str | Path, data: Data, seed: int = 0, suite: str = "smoke", model_config: str = "tiny",
                 variants: Iterable[str] = tuple(VARIANTS), device: str = "auto", echo: Callable = print) -> Path:
    """Train every missing model of ``variants`` for training seed ``seed`` into ``run_dir/seed<seed>/``."""
    from coprop import train as T

    base = resolve_path(run_dir) / f"seed{seed}"
    info = {"data_root": data.data_root, "synthetic_preset": data.synthetic_preset, "subset": data.subset,
            "data_seed": data.seed, "suite": suite, "model_config": model_config, "seed": seed}
    if not (base / "suite.json").is_file():
        from coprop.io import write_json

        write_json(base / "suite.json", info)   # what infer needs to refit the control-point detector
    todo = [(v, s) for v in variants for s in VARIANTS[v]["stages"] if not _finished(base / v, s)]
    if not todo:
        return base
    t_start = time.perf_counter()
    train_clips = data.split("train", SUITES[suite]["max_train_clips"])
    val_clips = data.split("val", 8)
    vocab = sorted({lab for c in train_clips for lab in (frame_labels(c) or [])})
    prepared: dict[int, Any] = {}
    for variant, stage in todo:
        cfg = suite_config(model_config, suite, variant, len(vocab))
        if cfg.image_size not in prepared:
            tr = T.prepare(train_clips, cfg.image_size, "preparing train clips")
            va = T.prepare(val_clips, cfg.image_size, "preparing val clips")
            va.mode, va.class_names = tr.mode, tr.class_names
            prepared[cfg.image_size] = (tr, va)
        tr, va = prepared[cfg.image_size]
        p = T.stage_params(suite, stage, seed=seed, device=pick_device(device),
                           **SUITES[suite]["train"].get(stage, {}))
        out = base / variant
        t0 = time.perf_counter()
        echo(f"  training {variant}/{stage} (seed {seed}, suite {suite}) ...")
        if variant == "aot" and cfg.propagator == "r50_aotl":
            from coprop.train.stages import published_propagator

            published_propagator(cfg, out)     # the paper config's AOT rows use the released weights unmodified
        elif variant == "text":
            _train_text_keyframe(cfg, stage, train_clips, tr, out, p, vocab)
        else:
            fn = {"keyframe": T.train_keyframe, "keyframe_ft": T.finetune_keyframe,
                  "propagator": T.train_propagator, "baseline": T.train_baseline}[stage]
            fn(cfg, tr, va, out, params=p)
        echo(f"  trained {variant}/{stage} in {time.perf_counter() - t0:.0f} s")
    echo(f"suite seed {seed}: {len(todo)} model(s) trained in {time.perf_counter() - t_start:.0f} s -> {base}")
    return base


class _Labelled(torch.utils.data.Dataset):
    """A FrameSamples dataset whose samples also carry the frame's category label id (text guidance)."""

    def __init__(self, frames, labels: list[list[int]]):
        self.frames, self.labels = frames, labels

    def set_epoch(self, epoch: int) -> None:
        self.frames.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int):
        ci, t = self.frames.index[i]
        return {**self.frames[i], "label": torch.tensor(self.labels[ci][t])}


def _train_text_keyframe(cfg, stage: str, clips, prepared, out: Path, params, vocab: list[str]) -> None:
    """The text-guided Keyframe Processor with coprop.train's loop (its stage functions feed no labels)."""
    from coprop.train import checkpoint as ck
    from coprop.train.data import FrameSamples, is_keyframe
    from coprop.train.loop import fit, seed_everything
    from coprop.train.run import WEIGHTS, build_model, record_stage
    from coprop.train.tasks import KeyframeStep

    if not vocab:
        raise ConfigError("the text-guided variant needs per-frame category labels in the training clips "
                          "(synthetic meta['sounding'] or meta['category'])")
    labels = [[vocab.index(lab) for lab in (frame_labels(c) or ["silence"] * c.num_frames)] for c in clips]
    frames = FrameSamples(prepared, seed=params.seed, select=is_keyframe if stage == "keyframe_ft" else None)
    seed_everything(params.seed)
    model = build_model("keyframe", cfg)
    if stage == "keyframe_ft":
        ck.load_weights(out / WEIGHTS["keyframe"], model)
    t0 = time.perf_counter()
    res = fit(KeyframeStep(model, cfg.num_classes), _Labelled(frames, labels), lambda net, b: net(b), params,
              out, stage)
    ck.save_weights(out / WEIGHTS[stage], model, {"stage": stage, "model": cfg.to_dict(), "final": res.last})
    record_stage(out, cfg, stage, {"params": params.to_dict(), "num_samples": len(frames),
                                   "wall_s": time.perf_counter() - t0, "vocab": vocab, "final": res.last})


def text_labeler(classifier, vocab: list[str]) -> Callable:
    """``labeler(clip, start, end) -> label id`` for the text-guided keyframe model: the keyframe's audio is
    classified into a category name (the learned detector's classifier, standing in for the LLM's step 2), and
    that name, not the audio, guides the segmentation (paper Table 4)."""
    cache: dict[str, list[str]] = {}

    def label(clip, start: int, end: int) -> int:
        if clip.name not in cache:
            cache[clip.name] = classifier.categories(clip)
        name = cache[clip.name][start]
        return vocab.index(name) if name in vocab else vocab.index("silence") if "silence" in vocab else 0

    return label


@dataclass
class Suite:
    """The loaded models of one training seed."""

    path: Path
    seed: int
    runs: dict[str, Any] = field(default_factory=dict)     # variant -> coprop.train.Run
    sources: dict[str, Any] = field(default_factory=dict)  # fitted control-point sources

    @classmethod
    def load(cls, run_dir: str | Path, seed: int = 0, device: str = "cpu") -> "Suite":
        from coprop.train import load_run

        base = resolve_path(run_dir) / f"seed{seed}"
        s = cls(base, seed)
        for v in VARIANTS:
            if (base / v).is_dir():
                s.runs[v] = load_run(base / v, device=device)
        if "main" not in s.runs:
            raise ConfigError(f"{base}: no trained suite here (train it with ensure_suite or `coprop demo`)")
        return s

    @property
    def cfg(self):
        return self.runs["main"].cfg

    def keyframe_model(self, which: str):
        main = self.runs["main"]
        if which == "ft":
            return main.require("keyframe_ft")
        if which == "stage1":
            if main.keyframe_stage1 is None:
                raise ConfigError(f"{main.path}: no stage-1 keyframe model (keyframe.safetensors)")
            return main.keyframe_stage1
        if which == "baseline":
            return main.require("baseline")   # clip-level: CoProp gives it the whole segment
        if which == "text":
            return self._text_run().require("keyframe")
        raise ConfigError(f"unknown keyframe model {which!r}")

    def _text_run(self):
        run = self.runs.get("text")
        if run is None:
            raise ConfigError(f"{self.path}: the suite has no text-guided variant (train 'text')")
        return run

    def labeler(self, which: str):
        if which != "text":
            return None
        if "learned" not in self.sources:
            raise ConfigError("the text-guided variant needs the fitted 'learned' source (its category classifier)")
        return text_labeler(self.sources["learned"], self._text_run().config["stages"]["keyframe"]["vocab"])

    def propagator(self, which: str):
        return self.runs[{"l4": "main", "l1": "aip1", "l0": "aot"}[which]].require("propagator")

    def stamp(self) -> str:
        """Changes whenever a weight file changes: cached predictions of older weights are not reused."""
        files = sorted(self.path.rglob("*.safetensors"))
        return hashlib.sha1("".join(f"{f}:{f.stat().st_mtime_ns}" for f in files).encode()).hexdigest()[:10]
