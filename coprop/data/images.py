"""Image and mask decoding for the AVSBench layouts; every failure is a DataError naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from coprop.errors import DataError

_REEXPORT_HINT = "re-export the file from the original video or restore it from the dataset archive"


def _open(path: Path):
    """Open and fully decode an image: PIL is lazy, and a truncated file only fails on load()."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing file", "check that the dataset was extracted completely")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)", _REEXPORT_HINT)
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"unreadable image ({e})", _REEXPORT_HINT) from None
    return img


def read_rgb(path: str | Path) -> np.ndarray:
    """uint8 [H,W,3] RGB."""
    img = _open(Path(path))
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


# the largest value a single-channel PNG of each mode can hold ('I' is how older Pillow opens 16-bit PNGs)
_MODE_MAX = {"1": 255, "L": 255, "P": 255, "I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 65535}


def _raw_gray(img) -> np.ndarray:
    """The stored pixel values of a single-channel mask (for 'P' the palette index, as convert('P') keeps it)."""
    if img.mode == "1":
        return np.asarray(img, dtype=np.uint8) * np.uint8(255)
    if img.mode in _MODE_MAX:
        return np.asarray(img).astype(np.int64)
    return np.asarray(img.convert("L"), dtype=np.int64)


def read_binary_mask(path: str | Path, strict: bool = True) -> np.ndarray:
    """int64 [H,W] in {0,1}. AVSBench stores objects as 255, background as 0 (8-bit PNG).

    A single-channel mask whose values are exactly 0 and the maximum of its bit depth (255 for 8-bit, 65535
    for 16-bit), or only 0 and 1, is binary and thresholded at > 0; for 8-bit 0/255 this equals the official
    ``convert('1')``. Any other value (e.g. 128 from a resized or JPEG-damaged mask) raises ``DataError``
    naming the file and its mode when ``strict``, because the official dithering would turn it into a pixel
    pattern; with ``strict=False`` it is thresholded at half the bit depth's maximum (PIL's undithered '1'
    rule for 8-bit: >= 128).
    """
    path = Path(path)
    img = _open(path)
    raw = _raw_gray(img)
    top = _MODE_MAX.get(img.mode, 255)
    values = set(np.unique(raw).tolist())
    if values <= {0, top} or values <= {0, 1}:
        return (raw > 0).astype(np.int64)
    if strict:
        bits = 16 if top == 65535 else 8
        bad = sorted(v for v in values if v not in (0, 1, top))[:8]
        raise DataError(path, f"binary mask (mode {img.mode}, {bits}-bit) has values other than 0 and {top}: {bad}",
                        f"a binary mask holds only 0 (background) and {top} (object), the maximum of its bit depth; "
                        "values in between come from resizing with interpolation, antialiasing or JPEG: re-export it "
                        "as a PNG with nearest-neighbour resizing, or open the dataset with strict=False to "
                        "threshold at half the maximum")
    return (raw >= (top + 1) // 2).astype(np.int64)


def voc_palette(num_classes: int) -> np.ndarray:
    """uint8 [num_classes,3]: the PASCAL VOC bit-interleaved palette (class 0 black, 1 (128,0,0), ...)."""
    pal = np.zeros((num_classes, 3), dtype=np.int64)
    for cls in range(num_classes):
        c, r, g, b = cls, 0, 0, 0
        for shift in range(7, -1, -1):
            # each 3 low bits of the class id feed the next-most-significant bit of r, g, b
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        pal[cls] = (r, g, b)
    return pal.astype(np.uint8)


def read_palette_mask(path: str | Path, num_classes: int, strict: bool = True) -> np.ndarray:
    """int64 [H,W] class ids from an RGB palette mask (AVSS labels_rgb), by exact colour match.

    The official loader maps an unknown colour silently to background; here that is an error naming the
    file and the colours unless ``strict=False``, which reproduces the official behaviour.
    """
    path = Path(path)
    rgb = np.asarray(_open(path).convert("RGB"), dtype=np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pal = voc_palette(num_classes).astype(np.int64)
    pal_code = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(pal_code)
    sorted_codes = pal_code[order]
    pos = np.clip(np.searchsorted(sorted_codes, code), 0, len(sorted_codes) - 1)
    known = sorted_codes[pos] == code
    labels = np.where(known, order[pos], 0).astype(np.int64)
    if strict and not known.all():
        bad = np.unique(code[~known])[:5]
        colours = [((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255) for c in bad]
        raise DataError(path, f"{int((~known).sum())} pixels have colours outside the {num_classes}-class "
                        f"VOC palette, e.g. {colours}",
                        "re-export the label with exact palette colours (no antialiasing or JPEG), or open "
                        "the dataset with strict=False to map unknown colours to background as the official "
                        "code does")
    return labels


def read_index_mask(path: str | Path, num_classes: int, strict: bool = True) -> np.ndarray:
    """int64 [H,W] class ids from a single-channel index map (AVSS labels_semantic)."""
    path = Path(path)
    img = _open(path)
    if img.mode not in _MODE_MAX or img.mode == "1":
        raise DataError(path, f"semantic label must be a single-channel index map, got mode {img.mode}",
                        "use labels_rgb for colour masks, or save class ids as an 8-bit grayscale PNG")
    ids = np.asarray(img).astype(np.int64)
    bad = ids >= num_classes
    if bad.any():
        if strict:
            raise DataError(path, f"class ids {np.unique(ids[bad])[:8].tolist()} exceed the {num_classes} classes "
                            "of label2idx.json", "check that the label file and label2idx.json belong together")
        ids = np.where(bad, 0, ids)
    return ids
