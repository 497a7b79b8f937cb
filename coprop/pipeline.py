"""Co-Prop: control points -> segments -> keyframe masks -> frame-by-frame audio-insert propagation.

    pipe = CoProp(keyframe_model, propagator, source=get_source("gt"))
    pred = pipe.predict(clip)                      # Prediction: logits [T,K,H,W], control points, timings
    stream = pipe.stream(flags)                    # or a callable (t, frame, logmel) -> bool
    logits = stream.push(frame_uint8, logmel)      # one frame at a time, bounded memory

A segment is a run of frames that starts at a control point. Its first frame (the keyframe) is
segmented by the keyframe model; the propagator is restarted from that mask and carries it through
the rest of the segment, one frame at a time, with that frame's audio inserted. Any segmenter can be
the keyframe model (paper Fig. 4): an image-level one (``forward(image, audio, text_labels)``, e.g.
KeyframeProcessor) or a clip-level one (``forward(frames, audio, text_labels)``, e.g. the
SimultaneousBaseline, whose keyframe logits are taken from its output over the segment or the clip).

Output channels: binary (K = 1) holds the log-odds of the object against background; semantic
(K = num_classes) gives each class present in the keyframe mask its own identity and scatters the
propagated logits back to those classes; classes absent from the keyframe sit ``ABSENT_MARGIN`` below
every present channel.
"""
from __future__ import annotations

import inspect
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from coprop.errors import ConfigError, DataError
from coprop.models.common import prepare_frames, resize_logits

ABSENT_MARGIN = 30.0


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Prediction:
    """One clip's output. ``timings_ms``: stage -> milliseconds for the whole clip."""

    name: str
    logits: Tensor                      # float32 [T, K, H, W] on the CPU
    control_points: list[int]
    keyframes: list[int]
    timings_ms: dict[str, float]
    state_bytes: int = 0                # most bytes the propagation state held at once
    peak_memory_bytes: int | None = None  # CUDA peak allocation during predict (None on the CPU)
    notes: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "binary" if self.logits.shape[1] == 1 else "semantic"

    def masks(self) -> Tensor:
        """int64 [T, H, W]: {0,1} (binary, logit > 0) or class ids (semantic, argmax)."""
        if self.mode == "binary":
            return (self.logits[:, 0] > 0).long()
        return self.logits.argmax(1)


@dataclass
class DatasetPredictions:
    predictions: dict[str, Prediction]
    bad_clips: list[tuple[str, str]]    # (clip name, what was wrong)

    def __len__(self) -> int:
        return len(self.predictions)


@dataclass
class PipelineConfig:
    """image_size: propagator input (default: the propagator's cfg); num_classes: K of the output (default:
    the keyframe model's cfg); keyframe_context: what a clip-level keyframe model sees -- 'segment' or
    'clip' offline (streaming always gives it the keyframe alone); area_floor: share of the frame a class
    must cover in a semantic keyframe mask to become a propagated object; binary_threshold: keyframe logit
    above which a pixel is the object."""

    image_size: int | None = None
    num_classes: int | None = None
    keyframe_context: str = "segment"
    area_floor: float = 0.001
    binary_threshold: float = 0.0


# ---------------------------------------------------------------------------------------------- keyframes
class KeyframeAdapter:
    """Gives any segmenter one call: ``(frames [T,3,S,S], audio [T,1,96,64] | None, index, text_label)`` ->
    logits ``[K, S, S]`` of ``frames[index]``. Image-level models see that frame only; clip-level ones all
    of ``frames`` (the caller decides: the segment, the whole clip, or just the keyframe)."""

    def __init__(self, model: Callable, level: str | None = None):
        self.model = model
        self.level = level or self._detect(model)
        if self.level not in ("image", "clip"):
            raise ConfigError(f"keyframe model level must be 'image' or 'clip', got {self.level!r}")
        cfg = getattr(model, "cfg", None)
        self.image_size = getattr(cfg, "image_size", None)
        self.num_classes = getattr(cfg, "num_classes", None)

    @staticmethod
    def _detect(model: Callable) -> str:
        from coprop.models.simultaneous import SimultaneousBaseline

        if isinstance(model, SimultaneousBaseline):
            return "clip"
        fn = model.forward if isinstance(model, nn.Module) else model
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        first = params[0].name if params else ""
        if first in ("frames", "clip", "video"):
            return "clip"
        if first in ("image", "images", "frame", "x"):
            return "image"
        raise ConfigError(f"cannot tell whether keyframe model {type(model).__name__} takes one image or a clip "
                          f"(first argument {first!r}); pass keyframe_level='image' or 'clip' to CoProp")

    def __call__(self, frames: Tensor, audio: Tensor | None, index: int, text_label: int | None = None) -> Tensor:
        device = frames.device
        if self.level == "image":
            args = [frames[index:index + 1], None if audio is None else audio[index:index + 1]]
            if text_label is not None:
                args.append(torch.tensor([text_label], device=device))
            return self.model(*args)[0]
        args = [frames[None], None if audio is None else audio[None]]
        if text_label is not None:
            args.append(torch.full((1, len(frames)), text_label, device=device))
        return self.model(*args)[0, index]


# ---------------------------------------------------------------------------------------------- helpers
def validate_control_points(cps: Sequence[int], num_frames: int, where: Any = None) -> list[int]:
    cps = [int(c) for c in cps]
    if len(cps) != num_frames:
        raise DataError(where, f"{len(cps)} control points for {num_frames} frames",
                        "a control-point source must return one 0/1 flag per frame")
    if any(c not in (0, 1) for c in cps):
        raise DataError(where, f"control points must be 0/1, got {sorted(set(cps))}", None)
    if cps and cps[0] != 1:
        raise DataError(where, "the first frame is not a control point (c[0] must be 1)",
                        "every clip starts a segment at frame 0")
    return cps


def segments(control_points: Sequence[int]) -> list[tuple[int, int]]:
    """[1,0,0,1,0] -> [(0, 3), (3, 5)]: half-open frame ranges, each starting at a control point."""
    starts = [t for t, c in enumerate(control_points) if c]
    return [(s, e) for s, e in zip(starts, starts[1:] + [len(control_points)])]


def _as_logmel(logmel, device) -> Tensor | None:
    if logmel is None:
        return None
    x = torch.as_tensor(np.asarray(logmel, dtype=np.float32) if not torch.is_tensor(logmel) else logmel)
    x = x.float().to(device)
    if x.ndim == 2:
        x = x[None]
    if tuple(x.shape) != (1, 96, 64):
        raise DataError(None, f"a frame's audio must be one log-mel example [1,96,64], got {tuple(x.shape)}",
                        "use coprop.data.audio.clip_logmel(clip)[t]")
    return x[None]


class _Clock:
    """Per-stage wall time in ms; synchronises CUDA so asynchronous kernels are charged to their stage."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        yield
        if self.cuda:
            torch.cuda.synchronize()
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000.0


# ---------------------------------------------------------------------------------------------- pipeline
class CoProp:
    def __init__(self, keyframe_model: Callable, propagator: nn.Module,
                 source: Callable[[Any], list[int]] | None = None, cfg: PipelineConfig | Any | None = None,
                 labeler: Callable[[Any, int, int], int] | None = None, keyframe_level: str | None = None):
        """``source(clip)`` -> T-long 0/1 list (None: only frame 0 is a keyframe unless predict() is given
        control points). ``labeler(clip, start, end)`` -> label id of a segment (text-guided models).
        ``cfg``: a PipelineConfig, or a ModelConfig whose image_size/num_classes are used."""
        self.keyframe = KeyframeAdapter(keyframe_model, keyframe_level)
        self.propagator = propagator
        self.source = source
        self.labeler = labeler
        if cfg is not None and not isinstance(cfg, PipelineConfig):
            cfg = PipelineConfig(image_size=getattr(cfg, "image_size", None),
                                 num_classes=getattr(cfg, "num_classes", None))
        self.cfg = cfg or PipelineConfig()
        if self.cfg.keyframe_context not in ("segment", "clip"):
            raise ConfigError(f"keyframe_context must be 'segment' or 'clip', got {self.cfg.keyframe_context!r}")
        prop_cfg = getattr(propagator, "cfg", None)
        self.size = int(self.cfg.image_size or getattr(prop_cfg, "image_size", 0) or 0)
        if not self.size:
            raise ConfigError("no image size: give PipelineConfig(image_size=...) or a propagator with .cfg")
        self.keyframe_size = int(self.keyframe.image_size or self.size)
        k = self.cfg.num_classes or self.keyframe.num_classes or getattr(prop_cfg, "num_classes", None)
        if not k:
            raise ConfigError("number of output classes unknown: set PipelineConfig(num_classes=...)")
        self.num_classes = int(k)
        self.max_objects = int(getattr(prop_cfg, "max_objects", 1) or 1)
        self.guidance = getattr(prop_cfg, "guidance", "audio")

    @property
    def mode(self) -> str:
        return "binary" if self.num_classes == 1 else "semantic"

    @property
    def device(self) -> torch.device:
        return next(self.propagator.parameters()).device

    def stream(self, control_points: Callable | Sequence[int] | None = None) -> "CoPropStream":
        """A per-frame session. ``control_points``: per-frame 0/1 flags, or ``fn(t, frame, logmel) -> bool``;
        ``push(..., is_control_point=...)`` overrides either. Frame 0 is always a keyframe."""
        return CoPropStream(self, control_points)

    # ---- offline ------------------------------------------------------------------------------------------
    def predict(self, clip, control_points: Sequence[int] | None = None) -> Prediction:
        from coprop.models.common import prepare_audio

        where = clip.meta.get("source") or clip.name
        device = self.device
        clock = _Clock(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        with clock("control_points"):
            if control_points is None:
                control_points = self.source(clip) if self.source is not None else \
                    [1] + [0] * (clip.num_frames - 1)
            cps = validate_control_points(control_points, clip.num_frames, where)
        with clock("audio"):
            audio = prepare_audio(clip, device) if self.guidance == "audio" else None
        segs = segments(cps)
        labels = {s: int(self.labeler(clip, s, e)) for s, e in segs} if self.labeler is not None else {}
        precomputed: dict[int, Tensor] = {}
        if self.keyframe.level == "clip":
            with torch.inference_mode(), clock("keyframe"):
                precomputed = self._clip_level_keyframes(clip, audio, segs, labels)
        stream = CoPropStream(self, cps, clock=clock)
        outs = []
        for t in range(clip.num_frames):
            outs.append(stream.push(clip.frames[t], None if audio is None else audio[t],
                                    keyframe_logits=precomputed.get(t), text_label=labels.get(t)))
        logits = torch.stack(outs)
        clock.ms["total"] = (time.perf_counter() - t0) * 1000.0
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        return Prediction(name=clip.name, logits=logits, control_points=cps,
                          keyframes=stream.keyframes, timings_ms=dict(clock.ms), state_bytes=stream.max_state_bytes,
                          peak_memory_bytes=peak, notes=stream.notes)

    def _clip_level_keyframes(self, clip, audio: Tensor | None, segs: list[tuple[int, int]],
                              labels: dict[int, int]) -> dict[int, Tensor]:
        frames = prepare_frames(clip.frames, self.keyframe_size, self.device)
        if self.cfg.keyframe_context == "clip":
            # one call over the whole clip gives every keyframe's logits
            per_frame = None
            if labels:
                per_frame = torch.empty(1, clip.num_frames, dtype=torch.long, device=self.device)
                for s, e in segs:
                    per_frame[0, s:e] = labels[s]
            args = [frames[None], None if audio is None else audio[None]] + ([per_frame] if labels else [])
            full = self.keyframe.model(*args)[0]
            return {s: full[s] for s, _ in segs}
        return {s: self.keyframe(frames[s:e], None if audio is None else audio[s:e], 0, labels.get(s))
                for s, e in segs}

    def predict_dataset(self, clips: Sequence, control_points: dict[str, Sequence[int]] | None = None,
                        keep: bool = True, on_prediction: Callable[[Any, Prediction], None] | None = None,
                        desc: str = "co-prop") -> DatasetPredictions:
        """Every clip of a (lazy) dataset. A clip that raises DataError (while loading or predicting) is
        reported in ``bad_clips`` and the run goes on. ``on_prediction(clip, pred)`` sees each result (e.g. an
        Evaluator); ``keep=False`` drops the logits afterwards so a large dataset does not pile up in memory."""
        from coprop.progress import progress

        names = list(getattr(clips, "names", [])) or [None] * len(clips)
        done: dict[str, Prediction] = {}
        bad: list[tuple[str, str]] = []
        for i in progress(range(len(clips)), desc=desc, total=len(clips)):
            name = names[i] or f"#{i}"
            try:
                clip = clips[i]
                name = clip.name if names[i] is None else name
                pred = self.predict(clip, None if control_points is None else control_points.get(clip.name))
            except DataError as e:
                bad.append((name, str(e)))
                continue
            if on_prediction is not None:
                on_prediction(clip, pred)
            if keep:
                done[name] = pred
        return DatasetPredictions(done, bad)


class CoPropStream:
    """One video, frame by frame. Memory is bounded: the propagator's state holds the keyframe plus at most
    ``cfg.memory_capacity`` frames, and is rebuilt at every keyframe."""

    def __init__(self, pipeline: CoProp, control_points: Callable | Sequence[int] | None = None,
                 clock: _Clock | None = None):
        self.pipe = pipeline
        self.control_points = control_points
        self.clock = clock or _Clock(pipeline.device)
        self.t = 0
        self.state = None
        self.classes: list[int] = []         # identity k (1-based) -> class id, semantic mode
        self.keyframes: list[int] = []
        self.max_state_bytes = 0
        self.notes: list[str] = []
        self.text_label: int | None = None

    @property
    def timings_ms(self) -> dict[str, float]:
        return dict(self.clock.ms)

    def _is_control_point(self, frame, logmel, flag: bool | None) -> bool:
        if self.t == 0:
            return True
        if flag is not None:
            return bool(flag)
        cp = self.control_points
        if cp is None:
            return False
        if callable(cp):
            return bool(cp(self.t, frame, logmel))
        if self.t >= len(cp):
            raise DataError(None, f"frame {self.t} pushed but only {len(cp)} control-point flags were given",
                            "give a flag per frame, a callable, or is_control_point= to push()")
        return bool(cp[self.t])

    @torch.inference_mode()
    def push(self, frame, logmel=None, is_control_point: bool | None = None, *,
             keyframe_logits: Tensor | None = None, text_label: int | None = None) -> Tensor:
        """``frame`` uint8 [H,W,3], ``logmel`` [1,96,64] (or [96,64]; None without audio) -> logits
        [K, H, W] (float32, CPU) at the frame's own size."""
        pipe = self.pipe
        frame = np.asarray(frame) if not torch.is_tensor(frame) else frame
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise DataError(None, f"a pushed frame must be uint8 [H,W,3], got shape {tuple(frame.shape)}", None)
        H, W = int(frame.shape[0]), int(frame.shape[1])
        device = pipe.device
        key = self._is_control_point(frame, logmel, is_control_point)
        with self.clock("prepare"):
            image = prepare_frames(frame[None], pipe.size, device)
            audio = _as_logmel(logmel, device)
        if key:
            if text_label is not None:
                self.text_label = int(text_label)
            with self.clock("keyframe"):
                if keyframe_logits is None:
                    kimage = image if pipe.keyframe_size == pipe.size else prepare_frames(frame[None],
                                                                                       pipe.keyframe_size, device)
                    keyframe_logits = pipe.keyframe(kimage, audio, 0, self.text_label)
                out = keyframe_logits.float()
            with self.clock("propagation"):
                self._restart(image, audio, out)
            self.keyframes.append(self.t)
        else:
            with self.clock("propagation"):
                obj_logits, self.state = pipe.propagator.step(image, audio, self.state)
                out = self._to_classes(obj_logits[0].float())
        self.max_state_bytes = max(self.max_state_bytes, self.state.nbytes())
        self.t += 1
        return resize_logits(out, (H, W)).cpu()

    def _restart(self, image: Tensor, audio: Tensor | None, key_logits: Tensor) -> None:
        """Keyframe logits [K, s, s] -> object-id mask -> a fresh propagator state."""
        pipe = self.pipe
        if key_logits.shape[0] != pipe.num_classes:
            raise ConfigError(f"keyframe model gives {key_logits.shape[0]} channels, the pipeline expects "
                              f"{pipe.num_classes}")
        logits = resize_logits(key_logits, (pipe.size, pipe.size))
        if pipe.mode == "binary":
            mask_ids = (logits[0] > pipe.cfg.binary_threshold).long()
            self.classes = [1]
        else:
            classes = logits.argmax(0)
            counts = torch.bincount(classes.flatten(), minlength=pipe.num_classes)
            floor = pipe.cfg.area_floor * classes.numel()
            present = [c for c in counts.nonzero().flatten().tolist() if c != 0 and counts[c] >= max(floor, 1)]
            if len(present) > pipe.max_objects:
                present = sorted(present, key=lambda c: -int(counts[c]))[:pipe.max_objects]
                self.notes.append(f"frame {self.t}: {len(present)} of the keyframe's classes kept "
                                  f"(identity bank holds {pipe.max_objects})")
            self.classes = sorted(present)
            mask_ids = torch.zeros_like(classes)
            for k, c in enumerate(self.classes, start=1):
                mask_ids[classes == c] = k
        labels = None if self.text_label is None else torch.tensor([self.text_label], device=image.device)
        self.state = pipe.propagator.start(image, audio, mask_ids[None], len(self.classes), text_labels=labels)

    def _to_classes(self, obj_logits: Tensor) -> Tensor:
        """Object logits [n+1, s, s] (0 = background) -> output channels [K, s, s]."""
        if self.pipe.mode == "binary":
            return obj_logits[1:2] - obj_logits[0:1]
        out = (obj_logits.amin(0, keepdim=True) - ABSENT_MARGIN).expand(self.pipe.num_classes, -1, -1).clone()
        out[0] = obj_logits[0]
        for k, c in enumerate(self.classes, start=1):
            out[c] = obj_logits[k]
        return out
