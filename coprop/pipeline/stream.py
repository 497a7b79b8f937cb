"""Co-Prop frame by frame (``CoPropStream``): a keyframe restarts the propagator from the keyframe model's
mask, every other frame is one propagator step with that frame's audio; memory stays bounded. Also the per-stage
clock both the stream and the offline pipeline charge their time to."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from coprop.errors import ConfigError, DataError
from coprop.models.common import prepare_frames, resize_logits
from coprop.pipeline.config import PipelineConfig
from coprop.pipeline.keyframes import KeyframeAdapter

ABSENT_MARGIN = 30.0


class StreamPipeline(Protocol):
    """What a stream needs of its pipeline. ``coprop.pipeline.predict.CoProp`` provides it; the stream module
    names this interface instead of importing CoProp, so the import graph stays one-way (predict -> stream)."""

    cfg: PipelineConfig
    keyframe: KeyframeAdapter
    propagator: nn.Module
    size: int                 # propagator input size (px)
    keyframe_size: int        # keyframe model input size (px)
    num_classes: int          # K output channels
    max_objects: int          # identities the propagator's bank holds

    @property
    def mode(self) -> str: ...

    @property
    def device(self) -> torch.device: ...


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


class StageClock:
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


class CoPropStream:
    """One video, frame by frame. Memory is bounded: the propagator's state holds the keyframe plus at most
    ``cfg.memory_capacity`` frames, and is rebuilt at every keyframe."""

    def __init__(self, pipeline: StreamPipeline, control_points: Callable | Sequence[int] | None = None,
                 clock: StageClock | None = None):
        self.pipe = pipeline
        self.control_points = control_points
        self.clock = clock or StageClock(pipeline.device)
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
             keyframe_logits: Tensor | None = None, text_label: int | None = None,
             encoded: tuple[list[Tensor], Tensor] | None = None, image: Tensor | None = None) -> Tensor:
        """``frame`` uint8 [H,W,3], ``logmel`` [1,96,64] (or [96,64]; None without audio) -> logits
        [K, H, W] (float32, CPU) at the frame's own size. ``encoded``: the propagator's ``encode`` of this frame
        when the caller batched it over several frames (``CoProp.predict``, ``coprop infer``); ``image``: this
        frame as the propagator takes it (float [1,3,S,S], ``prepare_frames(frame[None], S)``), when the caller
        made it already (for ``encoded``), so it is not made twice."""
        pipe = self.pipe
        frame = np.asarray(frame) if not torch.is_tensor(frame) else frame
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise DataError(None, f"a pushed frame must be uint8 [H,W,3], got shape {tuple(frame.shape)}", None)
        H, W = int(frame.shape[0]), int(frame.shape[1])
        device = pipe.device
        key = self._is_control_point(frame, logmel, is_control_point)
        with self.clock("prepare"):
            if image is None:
                image = prepare_frames(frame[None], pipe.size, device)
            elif tuple(image.shape) != (1, 3, pipe.size, pipe.size):
                raise DataError(None, f"a pushed image must be [1,3,{pipe.size},{pipe.size}], got "
                                      f"{tuple(image.shape)}", "make it with prepare_frames(frame[None], size)")
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
                self._restart(image, audio, out, encoded)
            self.keyframes.append(self.t)
        else:
            with self.clock("propagation"):
                more = {} if encoded is None else {"encoded": encoded}   # custom propagators need not take it
                obj_logits, self.state = pipe.propagator.step(image, audio, self.state, **more)
                out = self._to_classes(obj_logits[0].float())
        self.max_state_bytes = max(self.max_state_bytes, self.state.nbytes())
        self.t += 1
        return resize_logits(out, (H, W)).cpu()

    def _restart(self, image: Tensor, audio: Tensor | None, key_logits: Tensor,
                 encoded: tuple[list[Tensor], Tensor] | None = None) -> None:
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
        more = {} if encoded is None else {"encoded": encoded}
        self.state = pipe.propagator.start(image, audio, mask_ids[None], len(self.classes), text_labels=labels,
                                           **more)

    def _to_classes(self, obj_logits: Tensor) -> Tensor:
        """Object logits [n+1, s, s] (0 = background) -> output channels [K, s, s]."""
        if self.pipe.mode == "binary":
            return obj_logits[1:2] - obj_logits[0:1]
        out = (obj_logits.amin(0, keepdim=True) - ABSENT_MARGIN).expand(self.pipe.num_classes, -1, -1).clone()
        out[0] = obj_logits[0]
        for k, c in enumerate(self.classes, start=1):
            out[c] = obj_logits[k]
        return out
