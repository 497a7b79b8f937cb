"""Methods (one way to segment a clip: the simultaneous baseline, or Co-Prop with a choice of keyframe model,
control-point source and propagator) and their predictions, cached on disk per method and clip."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from coprop.errors import ConfigError
from coprop.experiments.suite import Suite


@dataclass(frozen=True)
class Method:
    """One way to segment a clip. kind 'baseline' = the simultaneous model; 'coprop' = control points from
    ``source`` -> keyframes by ``keyframe`` ('ft' | 'stage1' | 'baseline' | 'text') -> ``propagator``
    ('l4' | 'l1' | 'l0' audio-insert levels). Two reference methods isolate the stages: 'keyframe' = the
    ``keyframe`` model on every frame on its own (no propagation), 'prop_gt' = the ``propagator`` started from the
    GT mask at every GT control point (no keyframe model, no control-point error)."""

    label: str
    kind: str = "coprop"
    keyframe: str = "ft"
    source: str = "learned"
    propagator: str = "l4"

    @property
    def key(self) -> str:
        if self.kind == "baseline":
            return "baseline"
        if self.kind == "keyframe":
            return f"kf-{self.keyframe}_every-frame"
        if self.kind == "prop_gt":
            return f"gt-keyframes_cp-gt_prop-{self.propagator}"
        return f"kf-{self.keyframe}_cp-{self.source.replace(':', '-')}_prop-{self.propagator}"


BASELINE = Method("Simultaneous baseline", kind="baseline")
COPROP = Method("Co-Prop")
COPROP_GT = Method("Co-Prop + GT control points", source="gt")
KEYFRAME_ALONE = Method("Keyframe Processor alone (every frame)", kind="keyframe", source="")
PROPAGATOR_FROM_GT = Method("Propagator from GT keyframes (GT control points)", kind="prop_gt", source="gt")


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
    if method.kind == "keyframe":
        return keyframe_logits(suite, clip, [1] * clip.num_frames, method.keyframe)
    from coprop.pipeline import CoProp
    from coprop.pipeline.predict import EncodeCache

    cache = suite.encode_cache.setdefault(method.propagator, EncodeCache())   # shared by one propagator's methods
    if method.kind == "prop_gt":
        return _propagate_from_gt(suite.propagator(method.propagator), cfg, clip, cp, cache)

    pipe = CoProp(suite.keyframe_model(method.keyframe), suite.propagator(method.propagator),
                  suite.sources.get(method.source), cfg, labeler=suite.labeler(method.keyframe))
    pipe.encode_cache = cache
    with torch.no_grad():
        pred = pipe.predict(clip, control_points=cp)
    return torch.as_tensor(pred.logits).float()


def _propagate_from_gt(propagator, cfg, clip, cp: list[int], encode_cache=None) -> torch.Tensor:
    """The propagator alone: at every control point ``cp`` (the GT ones) it restarts from the GT mask, given as
    saturated keyframe logits, and propagates it to the following frames of the segment."""
    import numpy as np

    from coprop.pipeline import CoProp
    from coprop.pipeline.predict import BatchedEncoding

    K = cfg.num_classes
    gt = torch.as_tensor(np.asarray(clip.masks)).long()
    pipe = CoProp(lambda image, audio: None, propagator, None, cfg, keyframe_level="image")
    pipe.encode_cache = encode_cache
    audio = None
    if pipe.guidance == "audio":
        from coprop.models.common import prepare_audio

        audio = prepare_audio(clip, pipe.device)
    stream = pipe.stream(cp)
    encoded = BatchedEncoding(pipe, clip, audio, {})
    outs = []
    with torch.no_grad():
        for t in range(clip.num_frames):
            key = None
            if cp[t]:
                onehot = gt[t][None].float() if K == 1 else \
                    torch.nn.functional.one_hot(gt[t], K).permute(2, 0, 1).float()
                key = (onehot * 2 - 1) * 20.0    # logits that threshold / argmax back to the GT mask exactly
            image, enc = encoded[t]
            outs.append(stream.push(clip.frames[t], None if audio is None else audio[t], keyframe_logits=key,
                                    image=image, encoded=enc))
    return torch.stack(outs).float()


def _cache_file(cache: Path | None, clip_name: str) -> Path | None:
    return None if cache is None else cache / f"{clip_name}.pt"


def run_method(method: Method, suite: Suite, clips: list, cache: Path | None = None,
               control_points: dict[str, list[int]] | None = None) -> list[ClipResult]:
    """Predict every clip (cached on disk in the folder ``cache``, e.g. Evaluation.method_dir, as float16 logits)."""
    out = []
    needs_cp = method.kind in ("coprop", "prop_gt")
    if method.kind == "prop_gt":
        from coprop.experiments.clips import gt_control_points

        control_points = {c.name: gt_control_points(c) for c in clips}
    if needs_cp and control_points is None:
        src = suite.sources.get(method.source)
        if src is None:
            raise ConfigError(f"control-point source {method.source!r} is not fitted")
        # only the clips still to predict (a cached prediction holds the control points it used)
        todo = [c for c in clips if (f := _cache_file(cache, c.name)) is None or not f.is_file()]
        cps = src.predict_many(todo) if todo else []
        control_points = {c.name: list(map(int, cp)) for c, cp in zip(todo, cps)}
    for clip in clips:
        f = _cache_file(cache, clip.name)
        if f is not None and f.is_file():
            d = torch.load(f, weights_only=True)
            out.append(ClipResult(clip.name, d["logits"].float(), d["cp"].tolist(), float(d["seconds"])))
            continue
        cp = control_points[clip.name] if needs_cp else \
            [1] * clip.num_frames if method.kind == "keyframe" else [1] + [0] * (clip.num_frames - 1)
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
