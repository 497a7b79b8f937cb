"""`coprop check-data ROOT`: scan an AVSBench-layout tree and list every problem, not just the first.

It decodes every frame, mask, wav and log-mel pickle the readers would touch, with the readers' own
checks made strict (unknown palette colours, non-binary masks and non-16 kHz wavs are all reported).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from coprop.cli_args import ArgumentParser
from coprop.data.audio import MIN_SAMPLES, SAMPLE_RATE, load_logmel_pkl, read_wav
from coprop.data.avsbench import META_CSV, SPLITS, SUBSETS, open_dataset, resolve_subset_root
from coprop.data.images import read_rgb
from coprop.errors import DataError
from coprop.progress import progress


@dataclass(frozen=True)
class Problem:
    path: str
    problem: str
    hint: str = ""

    @classmethod
    def from_error(cls, e: DataError) -> "Problem":
        return cls(str(e.path) if e.path is not None else "", e.problem, e.hint or "")

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" + (f"  [hint: {self.hint}]" if self.hint else "")


def present_subsets(root: str | Path) -> list[str]:
    """Subsets whose meta CSV can be found under ``root``."""
    found = []
    for s in SUBSETS:
        try:
            resolve_subset_root(root, s)
            found.append(s)
        except DataError:
            pass
    return found


def check_dataset(root: str | Path, subsets: Sequence[str] | None = None, splits: Sequence[str] | None = None,
                  show_progress: bool = True) -> list[Problem]:
    """Every problem of the tree at ``root`` for ``subsets`` (default: those present) and ``splits`` (default all)."""
    root = Path(root)
    problems: list[Problem] = []
    if subsets is None:
        subsets = present_subsets(root)
        if not subsets:
            return [Problem(str(root), "no AVSBench subset found (no s4_meta_data.csv, ms3_meta_data.csv or "
                            "metadata.csv)", "pass the folder holding Single-source/, Multi-sources/, AVSS/")]
    for subset in subsets:
        problems += check_subset(root, subset, splits, show_progress)
    return problems


def check_subset(root: Path, subset: str, splits: Sequence[str] | None, show_progress: bool = True) -> list[Problem]:
    try:
        ds = open_dataset(root, subset, None, strict=True, resample_audio=False, use_pkl=True)
    except DataError as e:
        return [Problem.from_error(e)]
    problems: list[Problem] = []
    csv_path = ds.root / META_CSV[subset]
    keep = []
    for i, r in enumerate(ds.rows):
        if r["split"] not in SPLITS:
            problems.append(Problem(str(csv_path), f"row {i + 2} ({r['name']!r}) has unknown split {r['split']!r}",
                                    f"split must be one of {', '.join(SPLITS)}"))
        elif splits is None or r["split"] in splits:
            keep.append(i)
    for name, n in Counter(ds.names).items():
        if n > 1:
            problems.append(Problem(str(csv_path), f"clip {name!r} is listed {n} times", "remove the duplicate rows"))
    for i in progress(keep, desc=f"check {subset}", disable=not show_progress, unit="clip"):
        problems += check_clip(ds, i)
    return problems


def check_clip(ds, i: int) -> list[Problem]:
    """All problems of clip ``i`` of dataset ``ds``: layout, every file's decoding, sizes."""
    plan = ds.plan(i)
    problems = [Problem.from_error(e) for e in plan.problems]

    def attempt(fn, *args):
        try:
            return fn(*args)
        except DataError as e:
            problems.append(Problem.from_error(e))
            return None

    size = None
    for p in plan.frames:
        if not p.is_file():
            continue    # already reported by the plan
        img = attempt(read_rgb, p)
        if img is None:
            continue
        if size is None:
            size = img.shape[:2]
        elif img.shape[:2] != size:
            problems.append(Problem(str(p), f"frame size {img.shape[1]}x{img.shape[0]} differs from the clip's "
                                    f"first frame {size[1]}x{size[0]}", "all frames of a clip must have one size"))
    for p in plan.masks:
        if p is None or not p.is_file():
            continue
        m = attempt(ds.read_mask, p)
        if m is not None and size is not None and m.shape != size:
            problems.append(Problem(str(p), f"mask size {m.shape[1]}x{m.shape[0]} differs from frame size "
                                    f"{size[1]}x{size[0]}", "store masks at the frame resolution"))
    if plan.audio is not None:
        attempt(read_wav, plan.audio, SAMPLE_RATE, MIN_SAMPLES, False)
    if plan.logmel is not None:
        attempt(load_logmel_pkl, plan.logmel)
    return problems


def cli(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="coprop check-data", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="AVSBench folder (holding Single-source/, Multi-sources/, AVSS/) or one subset folder")
    parser.add_argument("--subset", nargs="+", choices=SUBSETS, help="subsets to check (default: all present)")
    parser.add_argument("--split", nargs="+", choices=SPLITS, help="splits to check (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    problems = check_dataset(args.root, args.subset, args.split, show_progress=not args.no_progress)
    for p in problems:
        print(p)
    subsets = args.subset or present_subsets(args.root)
    scope = f"{count_clips(args.root, subsets, args.split)} clip(s) of {', '.join(subsets) or 'no subset'}, " \
            f"splits {', '.join(args.split or SPLITS)}"
    if problems:
        files = len({p.path for p in problems})
        print(f"check-data: {len(problems)} problem(s) in {files} file(s)/folder(s); checked {scope} under {args.root}")
        return 1
    print(f"check-data: no problems; checked {scope} under {args.root}")
    return 0


def count_clips(root, subsets: Sequence[str], splits: Sequence[str] | None) -> int:
    n = 0
    for s in subsets:
        try:
            ds = open_dataset(root, s, None)
        except DataError:
            continue
        n += sum(1 for r in ds.rows if (splits is None and r["split"] in SPLITS) or (splits and r["split"] in splits))
    return n
