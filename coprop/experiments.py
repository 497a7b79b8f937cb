"""The model suite behind the ablations, and the tables computed from it (paper §4: Tables 1, 2a, 2b, 4, 5, 6;
Fig. 3 alignment, Fig. 4 plug-and-play).

A *suite* is one folder of trained models per training seed::

    <run_dir>/seed0/main/   keyframe (all frames) + keyframe_ft (keyframe subset) + propagator (4 insert levels)
                            + simultaneous baseline          -- coprop.train stage functions, one ModelConfig
    <run_dir>/seed0/aip1/   propagator with audio insertion at the deepest level only  (Table 5 '1-layer')
    <run_dir>/seed0/aot/    propagator without audio insertion = plain AOT              (Tables 2a, 5)
    <run_dir>/seed0/text/   text-guided Keyframe Processor (a category label instead of audio, Table 4)

``ensure_suite`` trains whatever is missing (finished stages are never retrained); ``Suite`` loads a seed's
models; a ``Method`` names one way of segmenting a clip (baseline, or Co-Prop with a choice of keyframe
model, control-point source and propagator); ``evaluate`` runs methods over the test clips and caches the
predictions on disk; the ``table*`` functions turn evaluations into DataFrames with the paper's numbers beside.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from coprop.controlpoints.detectors import frame_labels
from coprop.errors import ConfigError
from coprop.progress import progress

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
NO_LLM = "no LLM configured"


def parse_seeds(seeds: str | int | Sequence[int]) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    if isinstance(seeds, int):
        return [seeds]
    if isinstance(seeds, str):
        try:
            out = [int(s) for s in seeds.replace(" ", "").split(",") if s]
        except ValueError:
            raise ConfigError(f"seeds {seeds!r}: expected comma-separated integers such as '0,1,2'") from None
    else:
        out = [int(s) for s in seeds]
    if not out:
        raise ConfigError("seeds is empty; give at least one, e.g. '0'")
    return out


def resolve_path(path: str | Path) -> Path:
    """Relative paths are taken from the repository root (nbval runs kernels in notebooks/, papermill in root)."""
    from coprop.paths import repo_root

    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p


def set_threads(n: int) -> int:
    """CPU threads for torch; 0 keeps torch's default. On a small, busy CPU one thread is much faster than two:
    measured on the 2-core dev machine under load, a 64 px keyframe forward took 46 ms with 1 thread and 435 ms
    with 2 (OpenMP workers spin while waiting for a core)."""
    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def pick_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# ------------------------------------------------------------------------------------------------ data

@dataclass
class Data:
    """Where the clips come from. ``seed`` is the synthetic benchmark's seed (the data), not a training seed."""

    data_root: str = ""
    synthetic_preset: str = "smoke"
    subset: str = "ms3"
    seed: int = 0

    @property
    def root(self) -> Path:
        from coprop.data.synth import resolve_root

        return resolve_root(self.data_root or None, self.synthetic_preset, self.seed)

    @property
    def synthetic(self) -> bool:
        from coprop.data.synth import is_synthetic

        return is_synthetic(self.root)

    def split(self, split: str, limit: int | None = None) -> list:
        from coprop.data import open_dataset

        ds = open_dataset(self.root, self.subset, split)
        n = len(ds) if limit is None or limit < 0 else min(limit, len(ds))
        return [ds[i] for i in range(n)]

    def key(self) -> str:
        where = self.data_root or f"synthetic-{self.synthetic_preset}-s{self.seed}"
        return f"{self.subset}-" + hashlib.sha1(where.encode()).hexdigest()[:8]


# ------------------------------------------------------------------------------------------------ training

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
        if variant == "text":
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


# ------------------------------------------------------------------------------------------------ models

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


def _source_file(suite_dir: Path, name: str, data: Data) -> Path:
    return Path(suite_dir) / "sources" / f"{name}-{data.key()}.pt"


def cached_source(suite_dir: Path | None, name: str, data: Data):
    """A control-point source fitted earlier on ``data``'s training clips for this seed, or None."""
    f = None if suite_dir is None else _source_file(suite_dir, name, data)
    if f is None or not f.is_file():
        return None
    return torch.load(f, weights_only=False)   # written by fit_sources below, never downloaded


def fit_sources(suite: Suite, data: Data, names: Iterable[str], llm: dict[str, str] | None = None,
                echo: Callable = print) -> dict[str, Any]:
    """Fit the control-point sources a set of methods needs (cached per suite seed and data);
    RCPG names ('rcpg:1-step', ...) need an LLM and are skipped without one."""
    from coprop.controlpoints.detectors import get_source
    from coprop.io import atomic_path

    train = None
    for name in names:
        if name in suite.sources:
            continue
        if name.startswith("rcpg:") and not (llm or {}).get("backend"):
            continue   # the table row says NO_LLM
        cacheable = name in ("learned", "cosine")
        if cacheable and (src := cached_source(suite.path, name, data)) is not None:
            suite.sources[name] = src
            continue
        if name.startswith("rcpg:"):
            kw = {"model_path": llm.get("model", "")} if llm["backend"] == "local" else \
                {"base_url": llm.get("url", ""), "model": llm.get("model", "")}
            src = get_source("rcpg", backend=llm["backend"], variant=name.split(":", 1)[1], **kw)
        elif name == "learned":
            src = get_source("learned", seed=suite.seed)
        else:
            src = get_source(name)
        train = data.split("train") if train is None else train
        t0 = time.perf_counter()
        suite.sources[name] = src.fit(train)
        echo(f"  control points: fitted {name} in {time.perf_counter() - t0:.1f} s")
        if cacheable:
            f = _source_file(suite.path, name, data)
            f.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(f) as tmp:
                torch.save(src, tmp)
    return suite.sources


# ------------------------------------------------------------------------------------------------ methods

@dataclass(frozen=True)
class Method:
    """One way to segment a clip. kind 'baseline' = the simultaneous model; 'coprop' = control points from
    ``source`` -> keyframes by ``keyframe`` ('ft' | 'stage1' | 'baseline' | 'text') -> ``propagator``
    ('l4' | 'l1' | 'l0' audio-insert levels)."""

    label: str
    kind: str = "coprop"
    keyframe: str = "ft"
    source: str = "learned"
    propagator: str = "l4"

    @property
    def key(self) -> str:
        if self.kind == "baseline":
            return "baseline"
        return f"kf-{self.keyframe}_cp-{self.source.replace(':', '-')}_prop-{self.propagator}"


BASELINE = Method("Simultaneous baseline", kind="baseline")
COPROP = Method("Co-Prop")
COPROP_GT = Method("Co-Prop + GT control points", source="gt")


@dataclass
class ClipResult:
    name: str
    logits: torch.Tensor              # [T,K,H,W] at the clip's size (binary: K=1)
    control_points: list[int]         # what the method used (baseline: none -> all zeros after frame 0)
    seconds: float


def _predict(method: Method, suite: Suite, clip, cp: list[int] | None) -> torch.Tensor:
    from coprop.models.common import prepare_audio, prepare_frames, resize_logits

    cfg = suite.cfg
    if method.kind == "baseline":
        model = suite.runs["main"].require("baseline")
        with torch.no_grad():
            x = prepare_frames(clip.frames, cfg.image_size)[None]
            a = prepare_audio(clip)[None]
            out = model(x, a)[0].float()
        return resize_logits(out, clip.size)
    from coprop.pipeline import CoProp

    pipe = CoProp(suite.keyframe_model(method.keyframe), suite.propagator(method.propagator),
                  suite.sources.get(method.source), cfg, labeler=suite.labeler(method.keyframe))
    with torch.no_grad():
        pred = pipe.predict(clip, control_points=cp)
    return torch.as_tensor(pred.logits).float()


def _cache_file(cache: Path | None, method: Method, clip_name: str) -> Path | None:
    return None if cache is None else cache / method.key / f"{clip_name}.pt"


def run_method(method: Method, suite: Suite, clips: list, cache: Path | None = None,
               control_points: dict[str, list[int]] | None = None) -> list[ClipResult]:
    """Predict every clip (cached on disk under ``cache``/<method key>/ as float16 logits)."""
    out = []
    needs_cp = method.kind == "coprop"
    if needs_cp and control_points is None:
        src = suite.sources.get(method.source)
        if src is None:
            raise ConfigError(f"control-point source {method.source!r} is not fitted")
        cps = src.predict_many(clips)
        control_points = {c.name: list(map(int, cp)) for c, cp in zip(clips, cps)}
    for clip in clips:
        f = _cache_file(cache, method, clip.name)
        if f is not None and f.is_file():
            d = torch.load(f, weights_only=True)
            out.append(ClipResult(clip.name, d["logits"].float(), d["cp"].tolist(), float(d["seconds"])))
            continue
        cp = control_points[clip.name] if needs_cp else [1] + [0] * (clip.num_frames - 1)
        t0 = time.perf_counter()
        logits = _predict(method, suite, clip, cp if needs_cp else None)
        res = ClipResult(clip.name, logits, cp, time.perf_counter() - t0)
        if f is not None:
            from coprop.io import atomic_path

            f.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(f) as tmp:
                torch.save({"logits": logits.half(), "cp": torch.tensor(cp), "seconds": res.seconds}, tmp)
        out.append(res)
    return out


# ------------------------------------------------------------------------------------------------ scoring

def score(results: list[ClipResult], clips: list, frames: str = "all", k: int = 1, tau: float = 0.5,
          num_classes: int | None = None) -> dict[str, float]:
    """J and F (AVSBench-exact) and Alignment Rates (all / within ±k of a GT conversion / far from one), all
    from coprop.metrics.Evaluator, over ``frames``: 'all', 'key' (the frames the method made control points,
    segmented by the keyframe model) or 'normal' (the propagated frames)."""
    from coprop.controlpoints.annotate import clip_control_points
    from coprop.metrics import Evaluator

    mode = clips[0].mode
    ev = Evaluator(mode, k=k, tau=tau, num_classes=num_classes if mode == "semantic" else None)
    used = 0
    for r, c in zip(results, clips):
        avail = np.asarray(c.gt_available, bool).copy()
        cp = np.asarray(r.control_points, bool)
        if frames == "key":
            avail &= cp
        elif frames == "normal":
            avail &= ~cp
        if not avail.any():
            continue
        used += int(avail.sum())
        try:
            # near/far is decided by the clip's GT conversions over ALL its annotated frames, even when only
            # the key (or normal) frames are scored
            ev.add(c.name, r.logits, torch.as_tensor(c.masks), avail, control_points=clip_control_points(c))
        except Exception as e:  # noqa: BLE001 - one bad clip is reported, the rest still count
            ev.add_error(c.name, e)
    res = ev.result()
    if res["bad"]:
        raise ConfigError(f"scoring failed on {len(res['bad'])} clip(s): {res['bad'][0]}")
    nan = float("nan")
    return {"J": float(res.get("J", nan)) if used else nan, "F": float(res.get("F", nan)) if used else nan,
            "AR all": float(res["alignment_all"]), "AR near": float(res["alignment_near"]),
            "AR far": float(res["alignment_far"]), "frames": used, "frames near": int(res["n_near"]),
            "frames far": int(res["n_far"])}


def per_frame_j(result: ClipResult, clip) -> np.ndarray:
    """[T] Jaccard per frame (NaN where the frame has no GT); binary clips only, NaN for semantic."""
    from coprop.metrics import binary_jaccard

    out = np.full(clip.num_frames, np.nan)
    if clip.mode != "binary" or clip.masks is None:
        return out
    j = binary_jaccard(result.logits[:, 0], torch.as_tensor(clip.masks)).numpy()
    avail = np.asarray(clip.gt_available, bool)
    out[avail] = j[avail]
    return out


def aligned_frames(result: ClipResult, clip, tau: float = 0.5) -> list[bool | None]:
    """Per frame: does the prediction segment the GT sounding object(s)? (None where there is no GT)."""
    from coprop.metrics import alignment_rate
    from coprop.viz import logits_to_masks

    return alignment_rate(logits_to_masks(result.logits), clip.masks, clip.mode, tau=tau,
                          gt_available=clip.gt_available)["per_frame"]


# ------------------------------------------------------------------------------------------------ evaluation

DATASET_OF = {"s4": "S4", "ms3": "M3", "avss": "AVSS"}


@dataclass
class Evaluation:
    """Predictions of many methods on the same test clips, for one or more training seeds."""

    data: Data
    clips: list
    seeds: list[int]
    suites: dict[int, Suite]
    results: dict[int, dict[str, list[ClipResult]]] = field(default_factory=dict)
    llm: dict[str, str] = field(default_factory=dict)
    cache: Path | None = None
    k: int = 1

    @property
    def has_llm(self) -> bool:
        return bool(self.llm.get("backend"))

    @property
    def data_label(self) -> str:
        kind = f"synthetic {self.data.subset.upper()}-style ({self.data.synthetic_preset})" if self.data.synthetic \
            else f"AVSBench {self.data.subset.upper()}"
        return f"{kind}, test split, {len(self.clips)} clips"

    def available(self, m: Method) -> bool:
        return not (m.source.startswith("rcpg:") and not self.has_llm)

    def run(self, methods: Iterable[Method], echo: Callable = print) -> "Evaluation":
        methods = [m for m in methods if self.available(m)]
        for seed in self.seeds:
            suite = self.suites[seed]
            needed = {m.source for m in methods if m.kind == "coprop"}
            needed |= {"learned"} if any(m.keyframe == "text" for m in methods) else set()
            fit_sources(suite, self.data, sorted(needed), self.llm, echo)
            store = self.results.setdefault(seed, {})
            cache = None if self.cache is None else self.cache / self.data.key() / f"seed{seed}-{suite.stamp()}"
            for m in progress(methods, desc=f"methods (seed {seed})", unit="method"):
                if m.key in store:
                    continue
                t0 = time.perf_counter()
                store[m.key] = run_method(m, suite, self.clips, cache)
                echo(f"  {m.label}: {len(self.clips)} clips in {time.perf_counter() - t0:.1f} s")
        return self

    def scores(self, m: Method, frames: str = "all") -> dict[str, float]:
        """Mean and std over seeds of J, F (in %) and Alignment Rates (in %)."""
        per_seed = [score(self.results[s][m.key], self.clips, frames, self.k,
                          num_classes=self.suites[s].cfg.num_classes) for s in self.seeds]
        out: dict[str, float] = {}
        for key in ("J", "F", "AR all", "AR near", "AR far"):
            vals = np.array([100.0 * d[key] for d in per_seed], float)
            out[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
            out[f"{key} std"] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else float("nan")
        out["frames"] = per_seed[0]["frames"]
        out["frames near"] = per_seed[0]["frames near"]
        return out

    def subset(self, keep: Callable) -> "Evaluation":
        """The same predictions restricted to the clips for which ``keep(clip)`` is true (e.g. MOC-style)."""
        idx = [i for i, c in enumerate(self.clips) if keep(c)]
        res = {s: {k: [v[i] for i in idx] for k, v in d.items()} for s, d in self.results.items()}
        return replace(self, clips=[self.clips[i] for i in idx], results=res)

    def result(self, m: Method, clip_name: str, seed: int | None = None) -> ClipResult:
        seed = self.seeds[0] if seed is None else seed
        return next(r for r in self.results[seed][m.key] if r.name == clip_name)

    def control_points(self, m: Method, seed: int | None = None) -> dict[str, list[int]]:
        seed = self.seeds[0] if seed is None else seed
        return {r.name: r.control_points for r in self.results[seed][m.key]}

    def seconds_per_frame(self, m: Method) -> float:
        res = [r for s in self.seeds for r in self.results[s][m.key]]
        return sum(r.seconds for r in res) / max(1, sum(c.num_frames for c in self.clips) * len(self.seeds))


def evaluation(run_dir: str | Path, data: Data, seeds: Sequence[int], max_clips: int = -1,
               llm: dict[str, str] | None = None, k: int = 1, device: str = "cpu",
               clip_filter: Callable | None = None) -> Evaluation:
    """Load the suites of ``seeds`` (already trained) and the test clips; predictions are cached in the run folder."""
    clips = data.split("test")
    if clip_filter is not None:
        clips = [c for c in clips if clip_filter(c)]
    if max_clips is not None and max_clips >= 0:
        clips = clips[:max_clips]
    if not clips:
        raise ConfigError(f"no test clips to evaluate in {data.root} ({data.subset})")
    run_dir = resolve_path(run_dir)
    suites = {s: Suite.load(run_dir, s, pick_device(device)) for s in seeds}
    return Evaluation(data, clips, list(seeds), suites, llm=dict(llm or {}), cache=run_dir / "predictions", k=k)


def is_moc(clip) -> bool:
    """MOC-style clip (paper Table 3): its GT control points hold a sounding-object change after frame 0."""
    from coprop.controlpoints.annotate import clip_control_points

    return any(clip_control_points(clip)[1:])


# ------------------------------------------------------------------------------------------------ tables

def _row(ev: Evaluation, m: Method, label: str | None = None, frames: str = "all", **extra) -> dict[str, Any]:
    row: dict[str, Any] = {"method": label or m.label}
    row.update(extra)
    if not ev.available(m):
        row.update({"ours: J %": None, "ours: J std": None, "ours: F %": None, "ours: F std": None,
                    "note": NO_LLM})
        return row
    s = ev.scores(m, frames)
    row.update({"ours: J %": s["J"], "ours: J std": s["J std"], "ours: F %": s["F"], "ours: F std": s["F std"],
                "frames": s["frames"]})
    return row


def _finish(rows: list[dict], ev: Evaluation, table: str, row_map: dict[str, str]) -> pd.DataFrame:
    from coprop.paper_numbers import beside

    df = pd.DataFrame(rows)
    df.insert(1, "our data", ev.data_label)
    df["seeds"] = ",".join(map(str, ev.seeds))
    return beside(df, table, row_map, datasets=(DATASET_OF[ev.data.subset],))


def rcpg_stand_in(ev: Evaluation) -> Method:
    """The RCPG row's method: the LLM pipeline when one is configured, else the offline learned detector."""
    return replace(COPROP, source="rcpg:3-step+retrieval" if ev.has_llm else "learned")


def table1_methods(ev: Evaluation) -> list[Method]:
    return [BASELINE, rcpg_stand_in(ev), replace(rcpg_stand_in(ev), label="Co-Prop (baseline as keyframe model)",
                                                  keyframe="baseline")]


def table1(ev: Evaluation) -> pd.DataFrame:
    """Table 1 / Fig. 4: the simultaneous baseline, Co-Prop, and Co-Prop with the baseline as keyframe model."""
    m = table1_methods(ev)
    rows = [_row(ev, m[0], "Simultaneous baseline (TPAVI/AVSegFormer-style)"),
            _row(ev, m[1], "Co-Prop", **{"control points": m[1].source}),
            _row(ev, m[2], "Co-Prop (baseline as keyframe model)", **{"control points": m[2].source})]
    return _finish(rows, ev, "1", {"Co-Prop": "Co-Prop (ours)"})


def table2a_methods(ev: Evaluation) -> list[tuple[str, Method]]:
    src = rcpg_stand_in(ev).source
    return [("KPF- RCPG- AIP-", Method("KPF- RCPG- AIP-", keyframe="stage1", source="cosine", propagator="l0")),
            ("KPF+ RCPG- AIP-", Method("KPF+ RCPG- AIP-", keyframe="ft", source="cosine", propagator="l0")),
            ("KPF+ RCPG+ AIP-", Method("KPF+ RCPG+ AIP-", keyframe="ft", source=src, propagator="l0")),
            ("KPF+ RCPG+ AIP+", Method("KPF+ RCPG+ AIP+", keyframe="ft", source=src, propagator="l4"))]


def table2a(ev: Evaluation) -> pd.DataFrame:
    """Table 2a: keyframe fine-tuning (KPF), control points (RCPG vs cosine), audio insertion (AIP vs AOT)."""
    rows = []
    for label, m in table2a_methods(ev):
        rows.append(_row(ev, m, label, KPF="finetuned" if m.keyframe == "ft" else "all frames only",
                         **{"control points": m.source, "propagator": _PROP_NAMES[m.propagator]}))
    return _finish(rows, ev, "2a", {r: r for r, _ in table2a_methods(ev)})


_PROP_NAMES = {"l0": "AOT (no audio insertion)", "l1": "AIP 1 level", "l4": "AIP 4 levels"}


def table2b_methods() -> list[tuple[str, Method, str]]:
    return [("Cosine", replace(COPROP, label="Cosine", source="cosine"), "Cosine"),
            ("1-step", replace(COPROP, label="1-step", source="rcpg:1-step"), "1-step"),
            ("3-step", replace(COPROP, label="3-step", source="rcpg:3-step"), "3-step"),
            ("RCPG (3-step + retrieval)", replace(COPROP, label="RCPG", source="rcpg:3-step+retrieval"), "RCPG"),
            ("Learned detector (offline)", replace(COPROP, label="Learned", source="learned"), ""),
            ("GT control points (oracle)", replace(COPROP, label="GT", source="gt"), "")]


def table2b(ev: Evaluation) -> pd.DataFrame:
    """Table 2b: control-point sources, all with the fine-tuned Keyframe Processor and the 4-level AIP.
    Boundary F1 (±0 frames) of each source against the GT control points is reported beside J and F."""
    from coprop.controlpoints.detectors import GTSource

    gt = {c.name: GTSource()(c) for c in ev.clips}
    rows = []
    for label, m, _ in table2b_methods():
        row = _row(ev, m, label, **{"control points": m.source})
        if ev.available(m):
            row["CP boundary F1"] = _boundary_f1(ev.control_points(m), gt)
        rows.append(row)
    return _finish(rows, ev, "2b", {label: paper for label, _, paper in table2b_methods() if paper})


def _boundary_f1(pred: dict[str, list[int]], gt: dict[str, list[int]]) -> float:
    """Pooled precision/recall of control points after frame 0 (exact frame), as F1."""
    tp = fp = fn = 0
    for name, p in pred.items():
        g = gt[name]
        for t in range(1, len(g)):
            tp += int(p[t] and g[t])
            fp += int(p[t] and not g[t])
            fn += int(g[t] and not p[t])
    return 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else float("nan")


def table4_methods(ev: Evaluation) -> list[Method]:
    main = rcpg_stand_in(ev)
    return [main, replace(main, label="Text-guided", keyframe="text")]


def table4(ev: Evaluation) -> pd.DataFrame:
    """Table 4: keyframes guided by the frame's audio vs by a category label predicted from that audio."""
    a, t = table4_methods(ev)
    rows = [_row(ev, a, "Co-Prop", guidance="audio"),
            _row(ev, t, "Text-guided", guidance="category label predicted from the audio")]
    return _finish(rows, ev, "4", {"Co-Prop": "Co-Prop", "Text-guided": "Text-guided"})


def table5_methods(ev: Evaluation) -> list[tuple[str, Method]]:
    main = rcpg_stand_in(ev)
    return [("AOT", replace(main, label="AOT", propagator="l0")),
            ("1-layer", replace(main, label="1-layer", propagator="l1")),
            ("4-layer", replace(main, label="4-layer", propagator="l4"))]


def table5(ev: Evaluation) -> pd.DataFrame:
    """Table 5: audio insertion at no level (AOT), the deepest level, all four levels."""
    rows = [_row(ev, m, label, propagator=_PROP_NAMES[m.propagator],
                 **{"s/frame": ev.seconds_per_frame(m)}) for label, m in table5_methods(ev)]
    return _finish(rows, ev, "5", {r: r for r, _ in table5_methods(ev)})


def table6(ev: Evaluation) -> pd.DataFrame:
    """Table 6 (paper A.3): Co-Prop on all frames, on its keyframes (control points) and on propagated frames."""
    m = rcpg_stand_in(ev)
    rows = [_row(ev, m, "All Frames", "all"), _row(ev, m, "Key Frames", "key"),
            _row(ev, m, "Normal Frames", "normal")]
    return _finish(rows, ev, "6", {r: r for r in ("All Frames", "Key Frames", "Normal Frames")})


def all_methods(ev: Evaluation) -> list[Method]:
    ms = table1_methods(ev) + [m for _, m in table2a_methods(ev)] + [m for _, m, _ in table2b_methods()] \
        + table4_methods(ev) + [m for _, m in table5_methods(ev)]
    seen, out = set(), []
    for m in ms:
        if m.key not in seen:
            seen.add(m.key)
            out.append(m)
    return out


def alignment_methods() -> list[Method]:
    """Fig. 3: the baseline, Co-Prop (learned / RCPG control points) and Co-Prop with GT control points."""
    return [BASELINE, COPROP, COPROP_GT]


def alignment_table(ev: Evaluation, methods: Sequence[Method]) -> pd.DataFrame:
    rows = []
    for m in methods:
        if not ev.available(m):
            continue
        s = ev.scores(m)
        rows.append({"method": m.label, "our data": ev.data_label, f"AR all %": s["AR all"],
                     "AR all std": s["AR all std"], f"AR within ±{ev.k} of a conversion %": s["AR near"],
                     f"AR near std": s["AR near std"], f"AR farther %": s["AR far"], "AR far std": s["AR far std"],
                     "frames": s["frames"], "frames near": s["frames near"], "J %": s["J"],
                     "seeds": ",".join(map(str, ev.seeds))})
    return pd.DataFrame(rows)


def fig4(ev: Evaluation):
    """Paper Fig. 4 layout: J and F of the baseline alone and with Co-Prop around it (pink), plus Co-Prop."""
    from coprop.viz import grouped_bars

    t = table1(ev)
    long = pd.concat([pd.DataFrame({"metric": m, "method": t["method"], "value": t[f"ours: {m} %"],
                                    "std": t[f"ours: {m} std"].fillna(0)}) for m in ("J", "F")])
    return grouped_bars(long, "metric", "value", "method", yerr="std", highlight=t["method"].iloc[2],
                        title=f"Plug-and-play (paper Fig. 4 layout) -- {ev.data_label}")


def frame_objects(result: ClipResult, clip, tau: float = 0.5) -> tuple[list[str], list[str]]:
    """What sounds (GT) and what the method segments, per frame, as short text for alignment timelines.

    A frame whose prediction matches the GT is named after the GT object(s); a miss that matches the previous
    frame's GT instead is '<prev> (late)', one that matches the next frame's GT '<next> (early)' -- the
    temporal misalignment of paper Fig. 1 -- else 'other' or 'nothing'.
    """
    from coprop.controlpoints.annotate import frame_labels as gt_labels
    from coprop.viz import logits_to_masks

    gt_names = [n if n else "-" for n in gt_labels(clip)]
    pred = logits_to_masks(result.logits)
    gt = np.asarray(clip.masks)
    aligned = aligned_frames(result, clip, tau)
    T = clip.num_frames

    def same(a, b) -> bool:
        if clip.mode == "semantic":
            return set(np.unique(a)) - {0} == set(np.unique(b)) - {0}
        a, b = a > 0, b > 0
        union = (a | b).sum()
        return bool(union == 0 or (a & b).sum() / union >= tau)

    out = []
    for t in range(T):
        if aligned[t] is None:
            out.append("?")
        elif aligned[t]:
            out.append(gt_names[t])
        elif t > 0 and not same(gt[t - 1], gt[t]) and same(pred[t], gt[t - 1]):
            out.append(f"{gt_names[t - 1] if gt_names[t - 1] != gt_names[t] else 'previous object'} (late)")
        elif t + 1 < T and not same(gt[t + 1], gt[t]) and same(pred[t], gt[t + 1]):
            out.append(f"{gt_names[t + 1] if gt_names[t + 1] != gt_names[t] else 'next object'} (early)")
        else:
            out.append("nothing" if not pred[t].any() else "other")
    return gt_names, out


def timeline_figure(ev: Evaluation, methods: Sequence[Method], clip, tau: float = 0.5):
    """Alignment timeline of one clip: which object each method segments per frame, against GT."""
    from coprop.viz import alignment_timeline

    labels, aligned, gt = {}, {}, None
    for m in methods:
        if not ev.available(m):
            continue
        r = ev.result(m, clip.name)
        gt, labels[m.label] = frame_objects(r, clip, tau)
        aligned[m.label] = [bool(a) for a in aligned_frames(r, clip, tau)]
    from coprop.controlpoints.annotate import clip_control_points

    return alignment_timeline(labels, gt, aligned, clip_control_points(clip), title=clip.name)


def gt_control_points(clip) -> list[int]:
    from coprop.controlpoints.annotate import clip_control_points

    return [int(v) for v in clip_control_points(clip)]


def alignment_report(ev: Evaluation, methods: Sequence[Method]) -> pd.DataFrame:
    """Alignment rates of ``methods`` over all test clips and over the MOC-style ones (if any)."""
    rates = alignment_table(ev, methods)
    rates.insert(1, "clips", "all test clips")
    moc = ev.subset(is_moc)
    if moc.clips:
        moc_rates = alignment_table(moc, methods)
        moc_rates.insert(1, "clips", f"MOC-style clips ({len(moc.clips)})")
        rates = pd.concat([rates, moc_rates], ignore_index=True)
    return rates


def fig3(rates: pd.DataFrame, k: int, title: str = ""):
    """Paper Fig. 3 layout: Alignment Rate per method on MOC-style clips, near and far from conversions."""
    from coprop.viz import grouped_bars

    allc = rates["clips"] == "all test clips"
    parts = [("near a conversion (±%d)" % k, f"AR within ±{k} of a conversion %", allc),
             ("farther", "AR farther %", allc), ("all frames", "AR all %", allc)]
    moc = rates["clips"].str.startswith("MOC")
    if moc.any():
        parts.insert(0, ("MOC-style clips", "AR all %", moc))
    long = pd.concat([pd.DataFrame({"frames": name, "method": rates["method"][sel], "value": rates[col][sel]})
                      for name, col, sel in parts])
    fig = grouped_bars(long, "frames", "value", "method", title=title)
    fig.axes[0].set_ylabel("Alignment Rate %")
    return fig


def stack_figures(figs: list):
    """Several figures as one image (for one PNG in the report)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    imgs = []
    for f in figs:
        buf = io.BytesIO()
        f.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(f)
        imgs.append(np.asarray(Image.open(buf).convert("RGB")))
    W = max(i.shape[1] for i in imgs)
    canvas = np.full((sum(i.shape[0] for i in imgs), W, 3), 255, np.uint8)
    y = 0
    for i in imgs:
        canvas[y:y + i.shape[0], :i.shape[1]] = i
        y += i.shape[0]
    fig = plt.figure(figsize=(W / 100, canvas.shape[0] / 100), dpi=100)
    fig.figimage(canvas)
    return fig


def pick_clip(clips: list, index: int = -1):
    """``index`` >= 0: that test clip; -1: the first MOC-style clip (a source conversion after frame 0)."""
    if index >= 0:
        if index >= len(clips):
            raise ConfigError(f"clip_index {index} out of range: the test split has {len(clips)} clips")
        return clips[index]
    return next((c for c in clips if is_moc(c)), clips[0])


def keyframe_logits(suite: Suite, clip, control_points: Sequence[int], which: str = "ft") -> torch.Tensor:
    """The keyframe model alone on the control-point frames: logits [T,K,H,W], zeros (-inf-free) elsewhere."""
    from coprop.models.common import prepare_audio, prepare_frames, resize_logits

    model = suite.keyframe_model(which)
    idx = [t for t, c in enumerate(control_points) if c]
    dev = next(model.parameters()).device
    with torch.no_grad():
        x = prepare_frames(clip.frames[idx], suite.cfg.image_size, dev)
        a = prepare_audio(clip, dev)[idx]
        lg = resize_logits(model(x, a).float().cpu(), clip.size)
    out = torch.full((clip.num_frames, lg.shape[1], *clip.size), -20.0)
    out[idx] = lg
    return out


def clip_scores(ev_or_results: dict[str, ClipResult], clip, k: int = 1) -> pd.DataFrame:
    """J, F and alignment of each method's result on one clip (a walkthrough table)."""
    rows = []
    for label, r in ev_or_results.items():
        s = score([r], [clip], "all", k)
        rows.append({"method": label, "J %": 100 * s["J"], "F %": 100 * s["F"], "AR %": 100 * s["AR all"],
                     "control points": "".join(map(str, r.control_points)), "seconds": r.seconds})
    return pd.DataFrame(rows)
