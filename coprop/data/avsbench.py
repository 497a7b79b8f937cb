"""Readers for the official AVSBench layouts (reference/avsbench.md §2): S4, MS3 and AVSS.

Opening a dataset reads only its meta CSV (and label2idx.json for AVSS); ``ds[i]`` decodes one clip.
Each clip is first *planned* (which files should exist) and then decoded; ``coprop.data.check`` uses the
same plan to list every problem of a tree instead of stopping at the first.

Layout decisions where the official layout leaves room (tell the synthetic generator the same):
- S4/MS3 hold 5 frames; a folder with more numbered frames is read whole (synthetic long clips), and a
  missing number up to the largest present (at least 5) is a missing frame.
- The name column is 'name' when present, else the first column (MS3's first column is the video id).
- AVSS masks come from labels_rgb/ when it exists, else labels_semantic/; frames may be .jpg or .png.
- All frames of a clip must have one size and every mask that size: nothing is resized here.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from coprop.data.audio import MIN_SAMPLES, SAMPLE_RATE, load_logmel_pkl, read_wav
from coprop.data.clip import Clip, avsbench_frame_times
from coprop.data.images import read_binary_mask, read_index_mask, read_palette_mask, read_rgb
from coprop.errors import DataError

SUBSETS = ("s4", "ms3", "avss")
SPLITS = ("train", "val", "test")
SUBSET_DIRS = {"s4": ("Single-source",), "ms3": ("Multi-sources",), "avss": ("AVSS", "AVSBench-semantic")}
META_CSV = {"s4": "s4_meta_data.csv", "ms3": "ms3_meta_data.csv", "avss": "metadata.csv"}
REQUIRED_COLUMNS = {"s4": ("category", "split"), "ms3": ("split",), "avss": ("uid", "label", "split")}
AVSS_FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}
OFFICIAL_FRAMES = 5
SYNTHETIC_META = "synthetic_meta.json"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_LAYOUT_HINT = "check that the dataset was extracted completely (see data/README.md for the layout)"


@dataclass
class ClipPlan:
    """The files one clip is made of; ``masks[t]`` is None where frame t has no GT."""

    frames: list[Path]
    masks: list[Path | None]
    audio: Path | None
    logmel: Path | None
    source: Path
    problems: list[DataError] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- opening
def resolve_subset_root(root: str | Path, subset: str) -> Path:
    """The folder holding ``subset``'s meta CSV: ``root/<Subset-folder>`` or ``root`` itself."""
    root = Path(root)
    if subset not in SUBSETS:
        raise DataError(root, f"unknown subset {subset!r}", f"use one of {', '.join(SUBSETS)}")
    if not root.exists():
        raise DataError(root, "dataset root does not exist", "pass the AVSBench folder or a subset folder")
    candidates = [root / d for d in SUBSET_DIRS[subset]] + [root]
    for cand in candidates:
        if (cand / META_CSV[subset]).is_file():
            return cand
    expected = next((c for c in candidates if c.is_dir() and c != root), candidates[0]) / META_CSV[subset]
    raise DataError(expected, f"missing meta CSV for subset {subset}",
                    f"root must hold {SUBSET_DIRS[subset][0]}/{META_CSV[subset]} or be that folder itself")


def read_meta_csv(path: Path, subset: str) -> list[dict[str, str]]:
    """Rows of a meta CSV as dicts with a guaranteed 'name' key (see module docstring)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(path, f"unreadable meta CSV ({e})", _LAYOUT_HINT) from None
    if not header:
        raise DataError(path, "meta CSV is empty (no header row)", _LAYOUT_HINT)
    missing = [c for c in REQUIRED_COLUMNS[subset] if c not in header]
    if missing:
        raise DataError(path, f"meta CSV is missing column(s) {missing}; it has {header}",
                        f"the {subset} meta CSV needs a header with {list(REQUIRED_COLUMNS[subset])}")
    name_col = "uid" if subset == "avss" else ("name" if "name" in header else header[0])
    for r in rows:
        r["name"] = r[name_col]
    return rows


def read_label2idx(path: Path) -> list[str]:
    """class_names from AVSS label2idx.json (1-based values; class id = value - 1, background 0)."""
    try:
        mapping = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "missing label2idx.json", _LAYOUT_HINT) from None
    except (OSError, ValueError) as e:
        raise DataError(path, f"unreadable label2idx.json ({e})", "restore it from the AVSBench-semantic archive") from None
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(path, "label2idx.json must be a non-empty object {class name: 1-based index}",
                        "restore it from the AVSBench-semantic archive")
    values = list(mapping.values())
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values) or \
            sorted(values) != list(range(1, len(values) + 1)):
        raise DataError(path, "label2idx.json values must be the integers 1..N, each once",
                        "restore it from the AVSBench-semantic archive")
    names = [""] * len(values)
    for k, v in mapping.items():
        names[v - 1] = str(k)
    return names


def open_dataset(root: str | Path, subset: str, split: str | None, *, strict: bool = True,
                 resample_audio: bool = False, use_pkl: bool = True, labels: Sequence[str] | None = None,
                 avss_masks: str = "auto") -> "AVSBenchDataset":
    """Lazy sequence of Clips of AVSBench ``subset`` ('s4'|'ms3'|'avss') and ``split`` ('train'|'val'|'test',
    or None for every row).

    strict          unknown palette colours / non-binary mask values are errors (False: official fallback).
    resample_audio  resample wavs that are not 16 kHz instead of raising (AVSBench wavs are all 16 kHz).
    use_pkl         also load the official audio_log_mel/*.pkl into ``clip.logmel`` when present (S4/MS3);
                    the pkl alone is enough when the wav is missing.
    labels          AVSS only: keep rows whose label is in this list (e.g. ['v1s', 'v1m']).
    avss_masks      'auto' (labels_rgb, else labels_semantic), 'rgb' or 'semantic'.
    """
    subset = str(subset).lower()
    sroot = resolve_subset_root(root, subset)
    csv_path = sroot / META_CSV[subset]
    if split is not None and split not in SPLITS:
        raise DataError(csv_path, f"unknown split {split!r}", f"use one of {', '.join(SPLITS)} (or None for all)")
    if avss_masks not in ("auto", "rgb", "semantic"):
        raise DataError(csv_path, f"unknown avss_masks {avss_masks!r}", "use 'auto', 'rgb' or 'semantic'")
    rows = [r for r in read_meta_csv(csv_path, subset) if split is None or r["split"] == split]
    if subset == "avss":
        if labels is not None:
            rows = [r for r in rows if r["label"] in set(labels)]
        class_names = read_label2idx(sroot / "label2idx.json")
    else:
        class_names = ["background", "object"]
    return AVSBenchDataset(sroot, subset, split, rows, class_names, strict=strict,
                           resample_audio=resample_audio, use_pkl=use_pkl, avss_masks=avss_masks)


# ---------------------------------------------------------------------------------------------- dataset
class AVSBenchDataset(Sequence):
    """Sequence[Clip]; attributes names, subset, split, mode, class_names, root."""

    def __init__(self, root: Path, subset: str, split: str | None, rows: list[dict[str, str]],
                 class_names: list[str], *, strict: bool = True, resample_audio: bool = False,
                 use_pkl: bool = True, avss_masks: str = "auto"):
        self.root = Path(root)
        self.subset = subset
        self.split = split
        self.mode = "semantic" if subset == "avss" else "binary"
        self.class_names = list(class_names)
        self.rows = rows
        self.names = [r["name"] for r in rows]
        self.strict = strict
        self.resample_audio = resample_audio
        self.use_pkl = use_pkl
        self.avss_masks = avss_masks
        self._synthetic: dict | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.load(self._index(i))

    def __iter__(self) -> Iterator[Clip]:
        for i in range(len(self)):
            yield self.load(i)

    def __repr__(self) -> str:
        return f"AVSBenchDataset({self.subset}, split={self.split}, {len(self)} clips, root={self.root})"

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"clip index {i} out of range for {n} clips")
        return i % n

    def category(self, i: int) -> str:
        """Category without decoding: S4's category column, AVSS's a_obj column when present, else ''."""
        r = self.rows[self._index(i)]
        return r.get("category") or r.get("a_obj") or ""

    def split_of(self, i: int) -> str:
        return self.rows[self._index(i)]["split"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # ---------------------------------------------------------------- planning
    def plan(self, i: int) -> ClipPlan:
        """Which files clip ``i`` consists of, with every structural problem found (missing files, counts)."""
        r = self.rows[self._index(i)]
        return {"s4": self._plan_s4, "ms3": self._plan_ms3, "avss": self._plan_avss}[self.subset](r)

    def _plan_s4(self, r: dict[str, str]) -> ClipPlan:
        base, name, split, cat = self.root / "s4_data", r["name"], r["split"], r["category"]
        fdir = base / "visual_frames" / split / cat / name
        mdir = base / "gt_masks" / split / cat / name
        first_only = split == "train"   # S4 train carries the first frame's mask only
        return self._plan_numbered(fdir, lambda k: f"{name}_{k}.png", mdir, lambda k: f"{name}_{k}.png",
                                   first_only, base / "audio_wav" / split / cat / f"{name}.wav",
                                   base / "audio_log_mel" / split / cat / f"{name}.pkl")

    def _plan_ms3(self, r: dict[str, str]) -> ClipPlan:
        base, name, split = self.root / "ms3_data", r["name"], r["split"]
        fdir = base / "visual_frames" / name
        mdir = base / "gt_masks" / split / name
        return self._plan_numbered(fdir, lambda k: f"{name}.mp4_{k}.png", mdir, lambda k: f"{name}_{k}.png",
                                   False, base / "audio_wav" / split / f"{name}.wav",
                                   base / "audio_log_mel" / split / f"{name}.pkl")

    def _plan_numbered(self, fdir, fname, mdir, mname, first_only, wav, pkl) -> ClipPlan:
        """S4/MS3: frames and masks numbered 1..T."""
        plan = ClipPlan([], [], None, None, fdir)
        if not fdir.is_dir():
            plan.problems.append(DataError(fdir, "frame folder of this meta CSV row is missing", _LAYOUT_HINT))
            return plan
        present = _numbers(fdir, fname)
        T = max([OFFICIAL_FRAMES, *present])
        plan.frames = [fdir / fname(k) for k in range(1, T + 1)]
        for k in range(1, T + 1):
            if k not in present:
                plan.problems.append(DataError(fdir / fname(k), "missing frame file", _LAYOUT_HINT))
        n_gt = 1 if first_only else T
        plan.masks = [mdir / mname(k) if k <= n_gt else None for k in range(1, T + 1)]
        if not mdir.is_dir():
            plan.problems.append(DataError(mdir, "mask folder of this meta CSV row is missing", _LAYOUT_HINT))
        else:
            masks = _numbers(mdir, mname)
            if not first_only and masks and masks != set(range(1, T + 1)):
                plan.problems.append(DataError(
                    mdir, f"mismatched frame and mask counts: {T} frames, {len(masks)} masks "
                    f"(frame numbers without a mask: {sorted(set(range(1, T + 1)) - masks)}, "
                    f"masks without a frame: {sorted(masks - set(range(1, T + 1)))})", _LAYOUT_HINT))
            else:
                for k in range(1, n_gt + 1):
                    if k not in masks:
                        plan.problems.append(DataError(mdir / mname(k), "missing mask file", _LAYOUT_HINT))
        plan.audio = wav if wav.is_file() else None
        plan.logmel = pkl if (self.use_pkl or plan.audio is None) and pkl.is_file() else None
        if plan.audio is None and plan.logmel is None:
            plan.problems.append(DataError(wav, "missing audio file (and no audio_log_mel .pkl either)",
                                           _LAYOUT_HINT))
        return plan

    def _plan_avss(self, r: dict[str, str]) -> ClipPlan:
        label, split = r["label"], r["split"]
        cdir = self.root / label / r["uid"]
        plan = ClipPlan([], [], None, None, cdir)
        if not cdir.is_dir():
            plan.problems.append(DataError(cdir, "clip folder of this metadata.csv row is missing", _LAYOUT_HINT))
            return plan
        fdir = cdir / "frames"
        frames = _indexed_files(fdir, _IMAGE_EXTS)
        T = max([AVSS_FRAMES.get(label, 0), *(k + 1 for k in frames)])
        if T == 0:
            plan.problems.append(DataError(fdir, "no frames found (expected frames/0.jpg, 1.jpg, ...)", _LAYOUT_HINT))
            return plan
        ext = next(iter(frames.values())).suffix if frames else ".jpg"
        plan.frames = [frames.get(k, fdir / f"{k}{ext}") for k in range(T)]
        for k in range(T):
            if k not in frames:
                plan.problems.append(DataError(fdir / f"{k}{ext}", "missing frame file", _LAYOUT_HINT))
        rgb, sem = cdir / "labels_rgb", cdir / "labels_semantic"
        mdir = {"rgb": rgb, "semantic": sem}.get(self.avss_masks, rgb if rgb.is_dir() or not sem.is_dir() else sem)
        first_only = label == "v1s" and split == "train"
        n_gt = 1 if first_only else T
        masks = _indexed_files(mdir, (".png",))
        plan.masks = [mdir / f"{k}.png" if k < n_gt else None for k in range(T)]
        if not mdir.is_dir():
            plan.problems.append(DataError(mdir, "label folder is missing", _LAYOUT_HINT))
        elif not first_only and masks and set(masks) != set(range(T)):
            plan.problems.append(DataError(
                mdir, f"mismatched frame and mask counts: {T} frames, {len(masks)} masks", _LAYOUT_HINT))
        else:
            for k in range(n_gt):
                if k not in masks:
                    plan.problems.append(DataError(mdir / f"{k}.png", "missing mask file", _LAYOUT_HINT))
        wav = cdir / "audio.wav"
        plan.audio = wav if wav.is_file() else None
        if plan.audio is None:
            plan.problems.append(DataError(wav, "missing audio file", _LAYOUT_HINT))
        return plan

    # ---------------------------------------------------------------- decoding
    def read_mask(self, path: Path) -> np.ndarray:
        if self.subset != "avss":
            return read_binary_mask(path, strict=self.strict)
        if path.parent.name == "labels_semantic":
            return read_index_mask(path, self.num_classes, strict=self.strict)
        return read_palette_mask(path, self.num_classes, strict=self.strict)

    def read_audio(self, plan: ClipPlan) -> tuple[np.ndarray, np.ndarray | None]:
        """(waveform float32 16 kHz, logmel [N,1,96,64] or None)."""
        logmel = load_logmel_pkl(plan.logmel) if plan.logmel is not None else None
        if plan.audio is None:
            return np.zeros(0, dtype=np.float32), logmel
        wav, _ = read_wav(plan.audio, expected_sr=None if self.resample_audio else SAMPLE_RATE,
                          min_samples=MIN_SAMPLES, resample=True)
        return wav, logmel

    def load(self, i: int) -> Clip:
        i = self._index(i)
        plan = self.plan(i)
        if plan.problems:
            raise plan.problems[0]
        frames = [read_rgb(p) for p in plan.frames]
        size = frames[0].shape[:2]
        for p, f in zip(plan.frames, frames):
            if f.shape[:2] != size:
                raise DataError(p, f"frame size {f.shape[1]}x{f.shape[0]} differs from the clip's first frame "
                                f"{size[1]}x{size[0]}", "all frames of a clip must have one size")
        T = len(frames)
        masks = np.zeros((T, *size), dtype=np.int64)
        gt = np.zeros(T, dtype=bool)
        for t, p in enumerate(plan.masks):
            if p is None:
                continue
            m = self.read_mask(p)
            if m.shape != size:
                raise DataError(p, f"mask size {m.shape[1]}x{m.shape[0]} differs from frame size "
                                f"{size[1]}x{size[0]} ({plan.frames[t].name})",
                                "masks must be stored at the frame resolution; re-export with nearest resizing")
            masks[t], gt[t] = m, True
        waveform, logmel = self.read_audio(plan)
        r = self.rows[i]
        meta = {"name": r["name"], "subset": self.subset, "split": r["split"], "category": self.category(i),
                "mode": self.mode, "source": str(plan.source), "fps": 1.0,
                "audio": str(plan.audio or plan.logmel)}
        if self.subset == "avss":
            meta.update(label=r["label"], uid=r["uid"], vid=r.get("vid", ""))
        extra = self._synthetic_meta().get(r["name"])
        if extra is not None:
            meta.update(extra)
            meta["synthetic"] = True
        return Clip(frames=np.stack(frames), waveform=waveform, frame_times=avsbench_frame_times(T),
                    masks=masks, gt_available=gt, meta=meta, logmel=logmel)

    def _synthetic_meta(self) -> dict:
        if self._synthetic is None:
            path = self.root / SYNTHETIC_META
            self._synthetic = {}
            if path.is_file():
                try:
                    self._synthetic = json.loads(path.read_text())
                except (OSError, ValueError) as e:
                    raise DataError(path, f"unreadable synthetic metadata ({e})",
                                    "regenerate the synthetic benchmark") from None
        return self._synthetic


def _numbers(folder: Path, fname) -> set[int]:
    """Which k have ``folder/fname(k)`` present, from one directory listing."""
    prefix, _, suffix = fname("\x00").partition("\x00")
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return set()
    found = set()
    for n in names:
        if n.startswith(prefix) and n.endswith(suffix) and len(n) > len(prefix) + len(suffix):
            mid = n[len(prefix):len(n) - len(suffix)]
            if mid.isdigit():
                found.add(int(mid))
    return found


def _indexed_files(folder: Path, exts: tuple[str, ...]) -> dict[int, Path]:
    """{k: folder/k.ext} for 0-based numbered files."""
    out: dict[int, Path] = {}
    try:
        entries = list(folder.iterdir())
    except OSError:
        return out
    for p in entries:
        if p.suffix.lower() in exts and p.stem.isdigit():
            out[int(p.stem)] = p
    return out
