"""The model suite of one training seed: training whatever is missing (``ensure_suite``) and loading it
(``Suite``); which models it holds (``VARIANTS``) and how big they are trained (``SUITES``) live in ``budget``.

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
from coprop.experiments.budget import DEMO_MODEL, SUITES, VARIANTS  # noqa: F401  (re-exported)
from coprop.experiments.clips import Data
from coprop.experiments.settings import pick_device, resolve_path


def suite_config(model_config: str, suite: str, variant: str, num_text_labels: int = 0,
                 audio_weights: Path | None = None):
    """The ModelConfig of ``variant`` in ``suite``; ``audio_weights``: the seed's pre-trained tiny audio encoder."""
    from coprop.models.config import get_config

    if suite not in SUITES:
        raise ConfigError(f"unknown suite {suite!r}; choose one of {sorted(SUITES)}")
    over = dict(VARIANTS[variant]["cfg"])
    if SUITES[suite]["image_size"]:
        over["image_size"] = SUITES[suite]["image_size"]
    over = {**SUITES[suite].get("model", {}), **over}
    if variant == "text":
        over["num_text_labels"] = max(1, num_text_labels)
    if audio_weights is not None and variant != "text":
        over["audio_weights"] = str(audio_weights)
    return get_config(model_config, **over)


AUDIO_FILE = "audio/audio_encoder.safetensors"
PROPAGATOR_VARIANTS = {"l4": "main", "l1": "aip1", "l0": "aot"}   # a method's propagator -> the variant holding it
AUDIO_SEED = 0   # one pre-training, like VGGish's: every training seed's models start from the same audio encoder


def ensure_audio_encoder(run_dir: str | Path, data: Data, seed: int | None = None, suite: str = "smoke",
                         model_config: str = "tiny", echo: Callable = print) -> Path | None:
    """The suite's pre-trained tiny audio encoder (``<run_dir>/audio/``), trained once (seed AUDIO_SEED) when
    missing and shared by every training seed, as the paper's models of every run hear through one pre-trained
    VGGish; ``seed`` is accepted for callers that pass theirs and does not change the encoder. None when the suite
    does not pre-train, the config hears through VGGish, or the data has no sounding schedule."""
    from coprop.data.synth_scene import CATEGORIES
    from coprop.io import write_json
    from coprop.train.audio_pretrain import frames_and_targets, pretrain_audio_encoder

    opts = SUITES[suite].get("audio_pretrain")
    cfg = suite_config(model_config, suite, "main")
    path = resolve_path(run_dir) / AUDIO_FILE
    if not opts or cfg.audio_encoder != "tiny":
        return None
    if path.is_file():
        return path
    tr, va, _, _ = prepared_data(data, suite, cfg.image_size)
    x, y = frames_and_targets(tr, suite_train_clips(data, suite), CATEGORIES)
    if not len(x):
        return None    # no sounding schedule (real data): the encoder learns from the segmentation loss alone
    val = frames_and_targets(va, data.split("val", SUITES[suite]["val_clips"]), CATEGORIES)
    echo(f"  pre-training the audio encoder (seed {AUDIO_SEED}, {len(x)} frames, {opts['steps']} steps) ...")
    res = pretrain_audio_encoder(cfg, x, y, path, seed=AUDIO_SEED, val=val, **opts)
    write_json(path.parent / "metrics.json", {**res, "frames": int(len(x)), "categories": list(CATEGORIES)})
    echo(f"  audio encoder: val F1 {res.get('val_f1', float('nan')):.3f} in {res['seconds']:.0f} s")
    return path


def _finished(run: Path, stage: str) -> bool:
    from coprop.train.run import CONFIG, WEIGHTS

    if not (run / WEIGHTS[stage]).is_file() or not (run / CONFIG).is_file():
        return False
    return stage in json.loads((run / CONFIG).read_text()).get("stages", {})


def stage_dependencies(variant: str, stage: str) -> list[tuple[str, str]]:
    """The (variant, stage) models that must be finished before this one starts: the previous stage of the same
    variant (its folder's config.json and metrics.csv are written by one stage at a time) and the model whose
    backbone starts it (``VARIANTS[variant]['init']``)."""
    stages = VARIANTS[variant]["stages"]
    i = stages.index(stage)
    deps = [(variant, stages[i - 1])] if i else []
    init = VARIANTS[variant].get("init", {}).get(stage)
    if init:
        deps.append(tuple(init.split("/", 1)))
    return list(dict.fromkeys(deps))


def _in_dependency_order(todo: list[tuple[str, str]], base: Path, order: list | None = None) -> list[tuple[str, str]]:
    """``todo`` plus every unfinished model it starts from (``stage_dependencies``), each after what it needs:
    e.g. asking for ``main`` alone also trains ``aot/propagator``, which the 4-level propagator continues from."""
    order = [] if order is None else order
    for item in (i for i in todo if i not in order):
        _in_dependency_order([d for d in stage_dependencies(*item) if not _finished(base / d[0], d[1])], base, order)
        order.append(item)
    return order


def _stage_overrides(suite: str, variant: str, stage: str) -> dict[str, Any]:
    return {**SUITES[suite]["train"].get(stage, {}), **VARIANTS[variant].get("train", {}).get(suite, {}).get(stage, {})}


_PREPARED: dict[tuple, tuple] = {}   # (data key, suite, image size) -> prepared clips, kept for the process
_RAW: dict[tuple, list] = {}


def suite_train_clips(data: Data, suite: str) -> list:
    """The suite's training clips as read from disk (kept for the process: training, the control-point sources)."""
    key = (data.key(), suite)
    if key not in _RAW:
        _RAW[key] = data.split("train", SUITES[suite]["max_train_clips"])
    return _RAW[key]


def prepared_data(data: Data, suite: str, image_size: int) -> tuple:
    """(train, val, vocabulary, per-frame label ids): the suite's training and validation clips decoded and
    resized once per process (forked training workers share them, see coprop.train.jobs), and what the
    text-guided variant needs (the sounding category of every training frame as an index into the vocabulary)."""
    from coprop import train as T

    key = (data.key(), suite, image_size)
    if key not in _PREPARED:
        train_clips = suite_train_clips(data, suite)
        val_clips = data.split("val", SUITES[suite]["val_clips"])
        tr = T.prepare(train_clips, image_size, "preparing train clips")
        va = T.prepare(val_clips, image_size, "preparing val clips")
        va.mode, va.class_names = tr.mode, tr.class_names
        vocab = sorted({lab for c in train_clips for lab in (frame_labels(c) or [])})
        labels = [[vocab.index(lab) for lab in (frame_labels(c) or ["silence"] * c.num_frames)]
                  for c in train_clips] if vocab else []
        _PREPARED[key] = (tr, va, vocab, labels)
    return _PREPARED[key]


_DATA_KEYS = ("data_root", "synthetic_preset", "subset", "data_seed")


def suite_defaults(run_dir: str, suite: str, data: Data) -> tuple[str, str]:
    """Fill empty ``run_dir`` / ``suite`` from the data, so one parameter (``synthetic_preset``) points a notebook
    at a whole run: synthetic preset P -> ``runs/P`` and suite P (``coprop demo`` trains ``runs/demo``); a preset
    that is no suite (``long``) -> suite ``demo``; AVSBench (``data_root`` set) -> ``runs/paper``, suite ``paper``.
    Given values are kept."""
    if data.data_root:
        return run_dir or "runs/paper", suite or "paper"
    preset = data.synthetic_preset
    return run_dir or f"runs/{preset}", suite or (preset if preset in SUITES else "demo")


def warn_other_data(base: Path, info: dict, echo: Callable = print) -> list[str]:
    """Warn (``warnings.warn`` and ``echo``) when the models in ``base`` were trained on other data than ``info``
    describes (data root, synthetic preset, subset or data seed): they are reused as they are, so the results
    describe models trained elsewhere. Returns the differences, e.g. ``["synthetic_preset: smoke -> demo"]``."""
    import warnings

    try:
        old = json.loads((base / "suite.json").read_text())
    except (OSError, ValueError):
        return []
    diffs = [f"{k}: {old.get(k)!r} -> {info.get(k)!r}" for k in _DATA_KEYS if k in old and old.get(k) != info.get(k)]
    if diffs:
        msg = (f"{base}: these models were trained on other data ({'; '.join(diffs)}, see suite.json) and are "
               "reused as they are; to train models for this data, give a run_dir of its own (e.g. runs/demo for "
               "the demo preset)")
        warnings.warn(msg, UserWarning, stacklevel=3)
        echo("WARNING: " + msg)
    return diffs


def ensure_suite(run_dir: str | Path, data: Data, seed: int = 0, suite: str = "smoke", model_config: str = "tiny",
                 variants: Iterable[str] = tuple(VARIANTS), device: str = "auto", echo: Callable = print,
                 only: Iterable[tuple[str, str]] | None = None) -> Path:
    """Train every missing model of ``variants`` for training seed ``seed`` into ``run_dir/seed<seed>/``, in
    dependency order, with the unfinished models they start from (``only``: just these (variant, stage) models, e.g. one job of coprop demo's parallel plan)."""
    from coprop import train as T
    from coprop.train.run import WEIGHTS

    base = resolve_path(run_dir) / f"seed{seed}"
    info = {"data_root": data.data_root, "synthetic_preset": data.synthetic_preset, "subset": data.subset,
            "data_seed": data.seed, "suite": suite, "model_config": model_config, "seed": seed}
    if not (base / "suite.json").is_file():
        from coprop.io import write_json

        write_json(base / "suite.json", info)   # what infer needs to refit the control-point detector
    else:
        warn_other_data(base, info, echo)
    wanted = None if only is None else {tuple(x) for x in only}
    todo = _in_dependency_order([(v, s) for v in variants for s in VARIANTS[v]["stages"]
                                 if (wanted is None or (v, s) in wanted) and not _finished(base / v, s)], base)
    if not todo:
        return base
    t_start = time.perf_counter()
    audio = ensure_audio_encoder(run_dir, data, seed, suite, model_config, echo)
    for variant, stage in todo:
        tr, va, vocab, labels = prepared_data(data, suite, suite_config(model_config, suite, variant).image_size)
        cfg = suite_config(model_config, suite, variant, len(vocab), audio)
        p = T.stage_params(suite, stage, seed=seed, device=pick_device(device),
                           **_stage_overrides(suite, variant, stage))
        out = base / variant
        init = VARIANTS[variant].get("init", {}).get(stage)
        init_file = base / init.split("/")[0] / WEIGHTS[init.split("/")[1]] if init else None
        if init_file is not None and not init_file.is_file():
            raise ConfigError(f"{init_file}: {variant}/{stage} starts from the {init} model, which is not trained "
                              f"yet; train it first (ensure_suite over all variants does, in order)")
        t0 = time.perf_counter()
        echo(f"  training {variant}/{stage} (seed {seed}, suite {suite}) ...")
        if variant == "aot" and cfg.propagator == "r50_aotl":
            from coprop.train.stages import published_propagator

            published_propagator(cfg, out)     # the paper config's AOT rows use the released weights unmodified
        elif variant == "text":
            _train_text_keyframe(cfg, stage, labels, tr, out, p, vocab, init_file)
        elif stage == "baseline":    # every tensor of the keyframe model: the baseline is it + a time embedding
            T.train_baseline(cfg, tr, va, out, params=p, init_weights=init_file)
        elif stage == "propagator":  # paper 4.2: the Audio-Insert Propagator continues from the whole AOT
            whole = init is not None and init.endswith("/propagator")
            T.train_propagator(cfg, tr, va, out, params=p, **{"init_weights" if whole else "init_backbone": init_file})
        else:
            fn = T.train_keyframe if stage == "keyframe" else T.finetune_keyframe
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


def _train_text_keyframe(cfg, stage: str, labels: list[list[int]], prepared, out: Path, params, vocab: list[str],
                         init: Path | None = None) -> None:
    """The text-guided Keyframe Processor with coprop.train's loop (its stage functions feed no labels).
    ``labels``: per training clip and frame, the vocabulary index of what sounds; ``init``: the weights whose
    image backbone starts stage 1."""
    from coprop.train import checkpoint as ck
    from coprop.train.data import FrameSamples, is_keyframe
    from coprop.train.loop import fit, seed_everything
    from coprop.train.run import WEIGHTS, build_model, record_stage
    from coprop.train.tasks import KeyframeStep

    if not vocab:
        raise ConfigError("the text-guided variant needs per-frame category labels in the training clips "
                          "(synthetic meta['sounding'] or meta['category'])")
    frames = FrameSamples(prepared, seed=params.seed, select=is_keyframe if stage == "keyframe_ft" else None)
    seed_everything(params.seed)
    model = build_model("keyframe", cfg)
    if stage == "keyframe_ft":
        ck.load_weights(out / WEIGHTS["keyframe"], model)
    elif init is not None:
        ck.load_submodule(init, model, "backbone.")
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
    # propagator ('l4' | 'l1' | 'l0') -> its encodings of test clips, reused by every method with that propagator
    encode_cache: dict[str, Any] = field(default_factory=dict)   # -> coprop.pipeline.predict.EncodeCache

    @classmethod
    def load(cls, run_dir: str | Path, seed: int = 0, device: str = "cpu") -> "Suite":
        from coprop.train import load_run

        base = resolve_path(run_dir) / f"seed{seed}"
        s = cls(base, seed)
        for v in VARIANTS:
            # config.json appears when a variant's first model is finished: a folder without it is still training
            # (coprop demo's other worker) and is not part of the suite yet
            if (base / v / "config.json").is_file():
                s.runs[v] = load_run(base / v, device=device, lazy=True)
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

    @staticmethod
    def needs(method) -> set[str]:
        """The variants (model folders) whose models ``method`` (a methods.Method) uses."""
        need = {"main"}
        if method.kind not in ("baseline",):
            if method.kind != "prop_gt" and method.keyframe == "text":
                need.add("text")
            if method.kind != "keyframe":
                need.add(PROPAGATOR_VARIANTS[method.propagator])
        return need

    def has(self, method) -> bool:
        """Does this seed's suite hold every model ``method`` needs?"""
        return self.needs(method) <= set(self.runs)

    def propagator(self, which: str):
        return self.runs[PROPAGATOR_VARIANTS[which]].require("propagator")

    def stamp(self, variants: Iterable[str] | None = None) -> str:
        """Changes whenever a weight file of ``variants`` (default: all) changes: cached predictions of older weights
        are not reused, and a model trained later (another variant) leaves the others' predictions valid."""
        folders = [self.path] if variants is None else [self.path / v for v in sorted(variants)]
        files = sorted(f for d in folders for f in d.rglob("*.safetensors"))
        return hashlib.sha1("".join(f"{f}:{f.stat().st_mtime_ns}" for f in files).encode()).hexdigest()[:10]
