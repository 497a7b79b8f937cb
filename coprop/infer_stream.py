"""The streaming engine behind ``coprop infer``: decode -> segment -> write, one frame at a time.

Three threads overlap the work (PyAV decoding/encoding, torch and PNG compression release the GIL):

    decode thread  --(queue of queue_size frames)-->  caller's thread: segment  --(queue)-->  write thread

Only the frames in flight are held: when frame k is decoded, frame k - (2 * queue_size + 3) has been written
(its mask PNG and overlay picture), whatever the video's length.
"""
from __future__ import annotations

import functools
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

_END = object()
BINARY_COLOR = (230, 25, 75)     # the overlay colour of a binary mask (red)


@dataclass
class StreamStats:
    """Wall seconds each stage was busy (decode, segment, write), the CPU seconds its thread used (less than
    busy on a loaded machine), and the frames that went through."""

    frames: int = 0
    busy_s: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "segment": 0.0, "write": 0.0})
    cpu_s: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "segment": 0.0, "write": 0.0})

    def clock(self, stage: str):
        """Context manager adding the enclosed wall and thread-CPU time to ``stage``."""
        return _StageClock(self, stage)


class _StageClock:
    def __init__(self, stats: StreamStats, stage: str):
        self.stats, self.stage = stats, stage

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc):
        self.stats.busy_s[self.stage] += time.perf_counter() - self.t
        self.stats.cpu_s[self.stage] += time.thread_time() - self.c


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless the run was stopped (the consumer failed); False when stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def run_stream(frames: Iterable, segment: Callable, write: Callable, queue_size: int = 4) -> StreamStats:
    """Feed each item of ``frames`` to ``segment(item) -> result`` (in this thread) and ``write(item, result)``
    (in a writer thread), decoding the next items in a reader thread meanwhile.

    Items are processed in order; at most ``queue_size`` wait in each queue. The first exception in any
    stage stops the others and is raised here.
    """
    if queue_size < 1:
        raise ValueError(f"queue_size must be >= 1, got {queue_size}")
    stats = StreamStats()
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(maxsize=queue_size)
    q_out: queue.Queue = queue.Queue(maxsize=queue_size)
    failures: list[BaseException] = []

    def read() -> None:
        it: Iterator = iter(frames)
        try:
            while True:
                with stats.clock("decode"):
                    item = next(it, _END)
                if not _put(q_in, item, stop) or item is _END:
                    return
        except BaseException as e:  # handed to the caller's thread, which raises it
            _put(q_in, _Failed(e), stop)

    def write_all() -> None:
        try:
            while True:
                job = _get(q_out, stop)
                if job is _END:
                    return
                with stats.clock("write"):
                    write(*job)
        except BaseException as e:
            failures.append(e)
            stop.set()

    threads = [threading.Thread(target=read, name="coprop-decode", daemon=True),
               threading.Thread(target=write_all, name="coprop-write", daemon=True)]
    for th in threads:
        th.start()
    try:
        while True:
            item = _get(q_in, stop)
            if item is _END:
                break
            if isinstance(item, _Failed):
                raise item.exc
            with stats.clock("segment"):
                result = segment(item)
            if not _put(q_out, (item, result), stop):
                break
            stats.frames += 1
        _put(q_out, _END, stop)
    except BaseException:
        stop.set()
        raise
    finally:
        threads[1].join()
        stop.set()
        threads[0].join()
    if failures:
        raise failures[0]
    return stats


class MaskPainter:
    """Paints uint8 masks [H,W] over uint8 RGB frames [H,W,3]: each object pixel half its own colour, half the
    frame (alpha 0.5, (frame + colour) // 2), its outline in full colour. Binary masks (0/1) are red; class ids
    use coprop.viz's category colours. uint8 gather/scatter on the object pixels only: 3-7 ms CPU at 640x480."""

    def __init__(self, semantic: bool):
        from coprop.viz import class_color

        self.lut = np.zeros((256, 3), np.uint8)
        if semantic:
            for c in range(1, 256):
                self.lut[c] = class_color(c)
        else:
            self.lut[1:] = BINARY_COLOR

    def __call__(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        flat = mask.reshape(-1)
        idx = np.flatnonzero(flat)                 # gather/scatter by index: 4x faster than boolean masks
        if not len(idx):
            return frame
        color = self.lut[flat[idx]]
        out = frame.copy()
        pix = out.reshape(-1, 3)
        # (a + b) // 2 without overflow in uint8
        a = pix[idx]
        pix[idx] = (a >> 1) + (color >> 1) + (a & color & 1)
        # outline: object pixels with a 4-neighbour of another class (pixels beyond the border count as equal)
        edge = np.zeros(mask.shape, bool)
        for d, lo, hi in ((mask[1:] != mask[:-1], edge[1:], edge[:-1]),
                          (mask[:, 1:] != mask[:, :-1], edge[:, 1:], edge[:, :-1])):
            lo |= d
            hi |= d
        edge = np.flatnonzero(edge.reshape(-1) & (flat != 0))
        pix[edge] = self.lut[flat[edge]]
        return out


def logits_to_mask(logits, size: tuple[int, int], semantic: bool) -> np.ndarray:
    """Logits [K,h,w] (float, CPU) -> uint8 mask [H,W] at ``size`` = (H, W): bilinear resize of the logits
    (coprop.models.common.resize_logits), then ``logit > 0`` as 0/1 (binary) or the argmax class id."""
    import torch

    from coprop.models.common import resize_logits

    with torch.inference_mode():
        full = resize_logits(logits, size)
        if semantic:
            return full.argmax(0).numpy().astype(np.uint8)
        return (full[0] > 0).numpy().view(np.uint8)


def model_input(rgb: np.ndarray, size: int) -> tuple[np.ndarray, "torch.Tensor"]:
    """uint8 RGB [H,W,3] -> (the frame at the model's size, uint8 [size,size,3]; the propagator's input float
    [1,3,size,size], ImageNet-normalised, exactly what ``prepare_frames`` makes of that small frame).

    The antialiased bilinear resize is done on uint8 (torch's uint8 path, the filter of PIL's resize that
    AVSBench's preprocessing uses), 6x cheaper than coprop.models.common.prepare_frames's float resize of the
    full frame; the two differ by rounding only (at most one grey level, 0.017 after normalisation)."""
    import torch
    import torch.nn.functional as F

    from coprop.models.common import prepare_frames

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    small = x[0].permute(1, 2, 0).contiguous().numpy()
    return small, prepare_frames(small[None], size)


def png_bytes(image: np.ndarray, palette: np.ndarray | None = None, level: int = 1) -> bytes:
    """uint8 [H,W] -> a PNG file's bytes: 8-bit greyscale, or 8-bit palette colour when ``palette`` (uint8
    [N,3], N <= 256) is given. Written straight from the PNG specification (signature, IHDR, PLTE, IDAT with
    filter type 0 on every row and zlib at ``level``, IEND): 3x cheaper than PIL's encoder for masks, whose
    adaptive row filters gain nothing on flat areas."""
    import struct
    import zlib

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"png_bytes takes uint8 [H,W], got {image.dtype} {image.shape}")
    h, w = image.shape
    raw = np.zeros((h, w + 1), np.uint8)            # a leading 0 per row: filter type None
    raw[:, 1:] = image

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    colour_type = 0 if palette is None else 3
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))]
    if palette is not None:
        parts.append(chunk(b"PLTE", np.ascontiguousarray(palette, np.uint8).reshape(-1)[:768].tobytes()))
    parts += [chunk(b"IDAT", zlib.compress(raw.tobytes(), level)), chunk(b"IEND", b"")]
    return b"".join(parts)


@functools.lru_cache(maxsize=1)
def _voc_palette() -> np.ndarray:
    from coprop.data.images import voc_palette

    return voc_palette(256).astype(np.uint8)


def save_mask_png(path: Path, mask: np.ndarray, semantic: bool) -> None:
    """uint8 [H,W] -> PNG: binary (0/1) as 0/255 8-bit grey, semantic as class ids with the VOC palette.

    Encoded in memory and written under a temporary name, then renamed (a reader never sees half a file); not
    fsynced (one fsync per frame cost more than the encoding), and created with the umask's permissions."""
    import os

    if semantic:
        data = png_bytes(mask, _voc_palette())
    else:
        data = png_bytes(mask * np.uint8(255))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
