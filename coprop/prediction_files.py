"""Where a method's predicted masks live and how they are read, for ``coprop evaluate``.

A prediction folder holds one PNG per evaluated (GT-annotated) frame, at the same relative path as the GT mask
below the split's GT-mask folder of the official layout (reference/avsbench.md §2):

    S4    <category>/<name>/<name>_<k>.png     (k = 1..5, as gt_masks/<split>/...)
    MS3   <name>/<name>_<k>.png                (k = 1..5)
    AVSS  <uid>/<k>.png                        (k = 0..T-1, as <label>/<uid>/labels_*/<k>.png)

Binary subsets (S4, MS3) accept, per file: a 1-bit mask; an 8-bit map read as probability v/255 (so a 0/255
mask is the probabilities 0 and 1); a 16-bit map read as v/65535; an 8- or 16-bit (or palette-index) file whose
values are only 0 and 1 is a 0/1 mask, as the GT readers take it. AVSS accepts class-index maps (8/16-bit
grayscale or palette-index 'P' PNGs: the index is the class id) and RGB colour masks in the VOC palette.
A map is stored at the GT mask's size, or at 224x224 / 512x512 (what models output; the evaluation resizes it
where a protocol needs another size). Each frame's reading is recorded (``Frame.format``), nothing is guessed
silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from coprop.data.images import read_palette_mask
from coprop.errors import DataError
from coprop.metrics import _thresholds

_GRAY_TOP = {"L": 255, "P": 255, "I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 65535}


@dataclass
class Frame:
    """One GT-annotated frame: clip index ``t`` (0-based), GT mask path and the prediction's relative path."""

    clip: str
    t: int
    gt: Path
    rel: str
    status: str = "missing"   # ok | missing | unreadable | mis-sized | invalid
    format: str = ""          # how it was read: bit1, binary01, binary8/16 (0/max), prob8/16, index, palette
    detail: str = ""


def relative_path(ds, i: int, t: int, gt_mask: Path) -> str:
    """The prediction path of frame ``t`` of clip ``i`` of dataset ``ds`` (posix, relative to PRED_DIR)."""
    row = ds.rows[i]
    if ds.subset == "avss":
        return f"{row['uid']}/{t}.png"
    base = ds.root / ("s4_data" if ds.subset == "s4" else "ms3_data") / "gt_masks" / row["split"]
    return gt_mask.relative_to(base).as_posix()


def clip_frames(ds, i: int) -> tuple[object, list[Frame]]:
    """(the clip's ``ClipPlan``, its GT-annotated frames); the caller decides what ``plan.problems`` mean."""
    plan = ds.plan(i)
    frames = [Frame(ds.names[i], t, m, relative_path(ds, i, t, m)) for t, m in enumerate(plan.masks) if m is not None]
    return plan, frames


def _open_png(path: Path):
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"unreadable image ({e})") from None
    return img


def read_binary_prediction(path: Path) -> tuple[np.ndarray, int, str]:
    """(raw integer values [H,W] int64, top, format): probability = raw / top (top 1 for 0/1 and 1-bit masks).

    Raises ``DataError`` for an unreadable file or a colour (multi-channel) image, naming the mode.
    """
    img = _open_png(path)
    if img.mode == "1":
        return np.asarray(img, dtype=np.int64), 1, "bit1"
    if img.mode not in _GRAY_TOP:
        raise DataError(path, f"a binary prediction must be a single-channel PNG (1-bit, 8-bit or 16-bit), "
                        f"got mode {img.mode}", "save the mask or probability map as grayscale")
    raw = np.asarray(img).astype(np.int64)
    top = _GRAY_TOP[img.mode]
    if raw.size and (raw.min() < 0 or raw.max() > top):
        raise DataError(path, f"values {int(raw.min())}..{int(raw.max())} outside 0..{top} (mode {img.mode})")
    values = set(np.unique(raw).tolist())
    bits = 8 if top == 255 else 16
    if values <= {0, 1}:
        return raw, 1, "binary01"
    return raw, top, f"binary{bits}" if values <= {0, top} else f"prob{bits}"


def read_class_prediction(path: Path, num_classes: int) -> tuple[np.ndarray, str]:
    """(class ids [H,W] int64, format) from an index map (gray / 'P') or a VOC-palette RGB mask.

    Raises ``DataError`` for an unreadable file, class ids >= ``num_classes`` or colours outside the palette.
    """
    img = _open_png(path)
    if img.mode in _GRAY_TOP:
        ids = np.asarray(img).astype(np.int64)
        if ids.size and ids.max() >= num_classes:
            raise DataError(path, f"class ids {np.unique(ids[ids >= num_classes])[:8].tolist()} exceed the "
                            f"{num_classes} classes of label2idx.json (mode {img.mode})")
        return ids, "index"
    if img.mode in ("RGB", "RGBA"):
        return read_palette_mask(path, num_classes, strict=True), "palette"
    raise DataError(path, f"an AVSS prediction must be a class-index PNG or a VOC-palette RGB PNG, got mode {img.mode}")


@lru_cache(maxsize=None)
def logit_table(top: int) -> torch.Tensor:
    """float32 [top+1]: logits x_v whose float32 sigmoid puts stored value v exactly where p = float32(v/top) is.

    The official metrics threshold ``sigmoid(logits)``: J at ``> 0.5``, F at ``>= th[k]`` for 255 thresholds
    (reference/avsbench.md §1.1-1.2). Feeding ``x_v`` makes both decisions for every pixel the same as for the
    stored probability itself, so J and F of a probability map are exact. x_0 = -inf, x_top = +inf.
    """
    th = _thresholds()
    p = torch.from_numpy((np.arange(top + 1, dtype=np.float64) / top).astype(np.float32))
    want_bin, want_fg = torch.searchsorted(th, p, right=True), p > 0.5
    x = torch.logit(p.double()).float()
    for _ in range(64):   # rounding can leave a value one or two ulps across a threshold; step it back
        s = torch.sigmoid(x)
        got_bin, got_fg = torch.searchsorted(th, s, right=True), s > 0.5
        up = (got_bin < want_bin) | (want_fg & ~got_fg)
        down = (got_bin > want_bin) | (~want_fg & got_fg)
        if not (up | down).any():
            return x
        x = torch.where(up, torch.nextafter(x, torch.tensor(float("inf"))), x)
        x = torch.where(down, torch.nextafter(x, torch.tensor(float("-inf"))), x)
    raise RuntimeError(f"no exact logit for some {top}-level probabilities")  # not reached for 8/16-bit


def to_logits(raw: np.ndarray, top: int) -> torch.Tensor:
    """float32 logits for stored values ``raw`` (any shape) of a map whose probability is raw / top."""
    return logit_table(int(top))[torch.from_numpy(np.asarray(raw, dtype=np.int64))]


def listed_files(pred_dir: Path) -> set[str]:
    """Every file below ``pred_dir`` as a posix relative path (extra files are reported, not ignored)."""
    return {p.relative_to(pred_dir).as_posix() for p in pred_dir.rglob("*") if p.is_file()}
