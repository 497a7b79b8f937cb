"""``CoProp``: the pipeline object. It holds the keyframe model, the propagator and the control-point source,
predicts whole clips and datasets offline, and opens per-frame streams (``CoProp.stream``)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from coprop.errors import ConfigError, DataError
from coprop.models.audio_encoder import share_vggish
from coprop.models.common import prepare_frames
from coprop.pipeline.config import PipelineConfig
from coprop.pipeline.keyframes import KeyframeAdapter
from coprop.pipeline.results import DatasetPredictions, Prediction
from coprop.pipeline.segments import segments, validate_control_points
from coprop.pipeline.stream import CoPropStream, StageClock

BATCH = 16    # frames per batched model call in offline prediction (bounds its memory on long clips)


def _batchable(model) -> bool:
    """coprop's own image-level models take a batch of keyframes per call; a plug-in is shown one image at a time
    (KeyframeAdapter's contract)."""
    from coprop.models.keyframe import KeyframeProcessor
    from coprop.models.simultaneous import FramewiseBaseline

    return isinstance(model, (KeyframeProcessor, FramewiseBaseline))


def takes_encoded(propagator) -> bool:
    """Whether ``propagator.start``/``step`` take ``encoded=`` (coprop's AudioInsertPropagator and its R50-AOTL
    subclass); other propagators encode each frame themselves."""
    from coprop.models.propagator import AudioInsertPropagator

    return isinstance(propagator, AudioInsertPropagator)


def encode_frames(propagator, images: Tensor, audio: Tensor | None) -> list[tuple[list[Tensor], Tensor]]:
    """One batched ``propagator.encode(images [B,3,S,S], audio [B,1,96,64] | None)`` -> each frame's (skips,
    token map) with batch size 1, as ``encode`` gives for that frame alone up to float rounding (7e-7 measured,
    tiny config). Batching is what saves CPU: per-layer overhead is shared (tiny config, one thread, 128 px:
    20.5 ms for one frame, 10.2 ms per frame in eights)."""
    skips, grid = propagator.encode(images, audio)
    return [([s[j:j + 1] for s in skips], grid[j:j + 1]) for j in range(images.shape[0])]


class EncodeCache:
    """(clip name, first frame) -> (images, per-frame encodings) of one propagator, at most ``max_mb`` MB of
    tensors, the least recently used dropped first (the demo's test split needs ~100 MB per propagator)."""

    def __init__(self, max_mb: float = 1024.0):
        self.max_bytes, self.bytes = int(max_mb * 2 ** 20), 0
        self.items: OrderedDict[tuple[str, int], tuple[Any, int]] = OrderedDict()

    def get(self, key: tuple[str, int]):
        if key not in self.items:
            return None
        self.items.move_to_end(key)
        return self.items[key][0]

    def put(self, key: tuple[str, int], value) -> None:
        size = sum(t.numel() * t.element_size() for t in _tensors(value))
        if key in self.items:
            self.bytes -= self.items.pop(key)[1]
        self.items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes and self.items:
            self.bytes -= self.items.popitem(last=False)[1][1]


def _tensors(x):
    if torch.is_tensor(x):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _tensors(y)


class BatchedEncoding:
    """A clip's frames prepared and encoded by the propagator, BATCH frames per call, computed when first asked
    for and dropped when the next batch is made: ``enc[t]`` -> (image [1,3,S,S], (skips, token map)) of frame
    t, for ``CoPropStream.push(image=, encoded=)``. (None, None) where the propagator cannot take the encoding
    (text-guided segments, propagators without ``encoded=``).

    ``pipe.encode_cache`` (an EncodeCache, or None): batches kept by (clip name, first frame) for other pipelines
    with the same propagator on the same clips -- an evaluation runs ~4 methods per propagator over one test set,
    and the encoding depends only on the frames and their audio."""

    def __init__(self, pipe: "CoProp", clip, audio: Tensor | None, labels: dict[int, int]):
        self.pipe, self.clip, self.audio = pipe, clip, audio
        self.usable = not labels and takes_encoded(pipe.propagator)
        self.start, self.images, self.batch = 0, None, None

    def __getitem__(self, t: int):
        if not self.usable:
            return None, None
        if self.batch is None or not self.start <= t < self.start + BATCH:
            self.start = t - t % BATCH
            cache, key = self.pipe.encode_cache, (self.clip.name, self.start)
            hit = cache.get(key) if cache is not None else None
            if hit is not None:
                self.images, self.batch = hit
            else:
                idx = list(range(self.start, min(self.start + BATCH, self.clip.num_frames)))
                self.images = prepare_frames(self.clip.frames[idx], self.pipe.size, self.pipe.device)
                self.batch = encode_frames(self.pipe.propagator, self.images,
                                           None if self.audio is None else self.audio[idx])
                if cache is not None:
                    cache.put(key, (self.images, self.batch))
        j = t - self.start
        return self.images[j:j + 1], self.batch[j]


class CoProp:
    def __init__(self, keyframe_model: Callable, propagator: nn.Module,
                 source: Callable[[Any], list[int]] | None = None, cfg: PipelineConfig | Any | None = None,
                 labeler: Callable[[Any, int, int], int] | None = None, keyframe_level: str | None = None):
        """``source(clip)`` -> T-long 0/1 list (None: only frame 0 is a keyframe unless predict() is given
        control points). ``labeler(clip, start, end)`` -> label id of a segment (text-guided models).
        ``cfg``: a PipelineConfig, or a ModelConfig whose image_size/num_classes are used."""
        self.keyframe = KeyframeAdapter(keyframe_model, keyframe_level)
        self.propagator = propagator
        # one frozen VGGish for every model of the pipeline (289 MB of fp32 weights per copy saved)
        models = [m for m in (keyframe_model, propagator) if isinstance(m, nn.Module)]
        self.shared_vggish_bytes = share_vggish(*models)
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
        self.encode_cache: EncodeCache | None = None   # see BatchedEncoding; shared by the caller between pipelines

    @property
    def mode(self) -> str:
        return "binary" if self.num_classes == 1 else "semantic"

    @property
    def device(self) -> torch.device:
        return next(self.propagator.parameters()).device

    def stream(self, control_points: Callable | Sequence[int] | None = None) -> CoPropStream:
        """A per-frame session. ``control_points``: per-frame 0/1 flags, or ``fn(t, frame, logmel) -> bool``;
        ``push(..., is_control_point=...)`` overrides either. Frame 0 is always a keyframe."""
        return CoPropStream(self, control_points)

    # ---- offline ------------------------------------------------------------------------------------------
    def predict(self, clip, control_points: Sequence[int] | None = None) -> Prediction:
        from coprop.models.common import prepare_audio

        where = clip.meta.get("source") or clip.name
        device = self.device
        clock = StageClock(device)
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
        with torch.inference_mode(), clock("keyframe"):
            if self.keyframe.level == "clip":
                precomputed = self._clip_level_keyframes(clip, audio, segs, labels)
            elif not labels and _batchable(self.keyframe.model):
                precomputed = self._batched_keyframes(clip, audio, [s for s, _ in segs])
        encoded = BatchedEncoding(self, clip, audio, labels)
        stream = CoPropStream(self, cps, clock=clock)
        outs = []
        for t in range(clip.num_frames):
            with torch.inference_mode(), clock("propagation"):
                image, enc = encoded[t]
            outs.append(stream.push(clip.frames[t], None if audio is None else audio[t],
                                    keyframe_logits=precomputed.get(t), text_label=labels.get(t), encoded=enc,
                                    image=image))
        logits = torch.stack(outs)
        clock.ms["total"] = (time.perf_counter() - t0) * 1000.0
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        return Prediction(name=clip.name, logits=logits, control_points=cps,
                          keyframes=stream.keyframes, timings_ms=dict(clock.ms), state_bytes=stream.max_state_bytes,
                          peak_memory_bytes=peak, notes=stream.notes)

    def _batched_keyframes(self, clip, audio: Tensor | None, index: list[int]) -> dict[int, Tensor]:
        """An image-level keyframe model on every keyframe, BATCH at a time (one call per batch: small models
        on a CPU spend most of a single-frame call on per-layer overhead)."""
        out: dict[int, Tensor] = {}
        for i in range(0, len(index), BATCH):
            idx = index[i:i + BATCH]
            frames = prepare_frames(clip.frames[idx], self.keyframe_size, self.device)
            logits = self.keyframe.model(frames, None if audio is None else audio[idx])
            out.update({t: logits[j] for j, t in enumerate(idx)})
        return out

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
