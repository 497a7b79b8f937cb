"""The synthetic source-conversion benchmark, written in the official AVSBench layouts.

``generate(out, preset, seed)`` writes ``out/Single-source`` (S4 style), ``out/Multi-sources`` (MS3 style) and
``out/AVSS`` (AVSBench-semantic style) exactly as ``reference/avsbench.md`` §2 lays them out, so the same readers
serve real and synthetic data. Each subset root also holds ``synthetic_meta.json`` (per clip: the sounding
category names per frame, the visible categories, the frames where the sounding set changes, and the exact
sounding schedule in seconds); the reader copies it into ``clip.meta``. Not written: ``raw_videos`` and the
``audio_log_mel/*.pkl`` files (log-mel is computed from the wav by ``coprop.data.audio``).

Timing is AVSBench's: 1 frame per second, frame k at k + 15/16 s; the wav lasts T seconds at 16 kHz.
Sounding objects change at random instants, so the 0.96 s audio window of a frame can hold two sources.
GT for frame k is what sounds at the frame's instant. Everything is a function of (preset, seed).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from coprop.cli_args import ArgumentParser, nonneg_int
from coprop.data.synth_clip import Job, Made, class_names
from coprop.data.synth_scene import CATEGORIES, plan_clip, render
from coprop.data.synth_layout import CSV_FILES, WRITERS, voc_palette, write_csv
from coprop.data.synth_sound import mix

__all__ = ["PRESETS", "audio_windows", "class_names", "ensure", "generate", "is_synthetic", "make", "resolve_root", "summary",
           "voc_palette"]

GENERATOR_VERSION = 3   # a clip is a function of (version, seed, subset/split/name): the preset only sets how many
SUBSET_DIRS = {"s4": "Single-source", "ms3": "Multi-sources", "avss": "AVSS"}
SPLITS = ("train", "val", "test")
MANIFEST = "synthetic.json"
META = "synthetic_meta.json"


@dataclass(frozen=True)
class Preset:
    size: int                                   # frame side in pixels (frames are square)
    s4: dict[str, int]                          # clips per split
    ms3: dict[str, int]
    avss: dict[str, dict[str, int]]             # split -> {label: clips}
    ms3_frames: int = 5
    v2_frames: int = 10
    v2_change_rate: float = 0.2                 # sounding-set changes per second in 10-frame and long clips
    note: str = ""


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        size=64, s4={"train": 3, "val": 2, "test": 2}, ms3={"train": 3, "val": 2, "test": 2},
        avss={s: {"v1s": 1, "v1m": 1, "v2": 1} for s in SPLITS},
        note="tests: a few clips per split, 64x64"),
    # the README demo, 64 px (the size the demo models train at). Its models train on the MS3-style split, so
    # that one is large (the learning curves of benchmarks/learning_curves.py sized it: distinct clips, not
    # epochs over a few, are what the tiny models need); the test split resolves differences of a few J points.
    "demo": Preset(
        size=64, s4={"train": 120, "val": 16, "test": 24}, ms3={"train": 600, "val": 32, "test": 120},
        avss={"train": {"v1s": 20, "v1m": 20, "v2": 20}, "val": {"v1s": 4, "v1m": 4, "v2": 4},
              "test": {"v1s": 4, "v1m": 6, "v2": 6}},
        note="the README demo: 600 MS3-style training clips, 120 test clips, 64x64"),
    "long": Preset(
        size=96, s4={"train": 2, "val": 1, "test": 1}, ms3={"train": 1, "val": 1, "test": 2},
        avss={"train": {"v2": 1}, "val": {"v2": 1}, "test": {"v2": 2}},
        ms3_frames=300, v2_frames=300, v2_change_rate=0.1,
        note="memory studies: 300-frame MS3-style and AVSS-v2-style clips (S4 tree stays 5-frame)"),
}


def _jobs(preset: Preset, seed: int) -> list[Job]:
    jobs: list[Job] = []
    order = np.random.default_rng([seed, 99]).permutation(CATEGORIES)  # balanced S4 categories, seed-shuffled
    n_single = 0  # running count, so small presets still cycle through all categories across splits
    for split in SPLITS:
        for i in range(preset.s4.get(split, 0)):
            cat = str(order[n_single % len(order)])
            n_single += 1
            jobs.append(Job("s4", split, f"s4-{split}-{i:04d}", "single", 5, category=cat))
    for split in SPLITS:
        rate = preset.v2_change_rate if preset.ms3_frames > 10 else None
        for i in range(preset.ms3.get(split, 0)):
            jobs.append(Job("ms3", split, f"ms3-{split}-{i:04d}", "multi", preset.ms3_frames, change_rate=rate))
    for split in SPLITS:
        for label, n in preset.avss.get(split, {}).items():
            for i in range(n):
                T = preset.v2_frames if label == "v2" else 5
                kind = "single" if label == "v1s" else "multi"
                cat = str(order[n_single % len(order)]) if kind == "single" else None
                n_single += kind == "single"
                rate = preset.v2_change_rate if label == "v2" else None
                jobs.append(Job("avss", split, f"avss-{label}-{split}-{i:04d}", kind, T, label, cat, rate))
    return jobs


def _rng(seed: int, job: Job) -> np.random.Generator:
    """Per-clip stream: a clip does not change when other clips are added or removed."""
    key = [ord(c) for c in f"{job.subset}/{job.split}/{job.name}"]
    return np.random.default_rng([seed, GENERATOR_VERSION, *key])


def audio_windows(events: list, num_frames: int, hop: float = 0.96) -> list[dict]:
    """For each frame k, what its VGGish audio window [hop*k, hop*(k+1)) holds, from a clip's
    ``meta['events']`` ([t0, t1, [sounding names]] in seconds): ``mixed`` (two or more sounding states overlap the
    window) and ``dominant`` (the state covering most of the window). Frame k's GT is the state at k + 15/16 s,
    so near a conversion the window can be dominated by the previous or the next source.
    """
    out = []
    for k in range(num_frames):
        a, b = hop * k, hop * (k + 1)
        cover: dict[tuple, float] = {}
        for t0, t1, who in events:
            overlap = min(t1, b) - max(t0, a)
            if overlap > 0:
                key = tuple(sorted(who))
                cover[key] = cover.get(key, 0.0) + overlap
        dominant = max(cover, key=cover.get) if cover else ()
        out.append({"mixed": len(cover) > 1, "dominant": list(dominant)})
    return out


def make(job: Job, size: int, seed: int) -> Made:
    """Plan, render and sonify one clip (no disk access)."""
    rng = _rng(seed, job)
    plan = plan_clip(job.kind, job.num_frames, rng, category=job.category, change_rate=job.change_rate)
    frames, inst = render(plan, size, rng)
    wave = mix(plan.duration, [(o.category, plan.spans(i)) for i, o in enumerate(plan.objects)], rng)
    return Made(plan, frames, inst, wave)


def with_train_clips(preset: Preset, n: int | None) -> Preset:
    """``preset`` with ``n`` training clips in each of the S4-, MS3- and AVSS-style train splits (AVSS: split over
    its labels in the preset's proportions); val and test unchanged. ``None``: the preset as it is.

    Clips are a function of (seed, subset/split/name), so a larger train split holds the smaller one as its first
    clips: training on the first N clips of any larger split is training on the N-clip split."""
    if n is None:
        return preset
    labels = preset.avss.get("train") or {"v1s": 1, "v1m": 1, "v2": 1}
    total = sum(labels.values())
    avss = [int(n * v // total) for v in labels.values()]
    avss[-1] += n - sum(avss)
    return replace(preset, s4={**preset.s4, "train": n}, ms3={**preset.ms3, "train": n},
                   avss={**preset.avss, "train": dict(zip(labels, avss))},
                   note=f"{preset.note}; {n} training clips per subset")


def _make_and_write(args: tuple) -> tuple[str, list, dict]:
    """One clip, generated and written (a worker process's unit of work): (subset, CSV row, meta entry)."""
    job, size, seed, out = args
    m = make(job, size, seed)
    row = WRITERS[job.subset](Path(out) / SUBSET_DIRS[job.subset], job, m)
    return job.subset, row, {**m.meta(), "split": job.split, **({"label": job.label} if job.label else {})}


def default_workers() -> int:
    """Generation processes: one per CPU core, at most 2 (the demo machine's cores)."""
    return max(1, min(2, os.cpu_count() or 1))


def generate(out: str | Path, preset: str = "smoke", seed: int = 0, progress_bar: bool = True,
             train_clips: int | None = None, workers: int | None = None) -> Path:
    """Write the benchmark for ``preset`` into ``out`` (created if needed) and return ``out``.

    ``train_clips``: training clips per subset instead of the preset's (:func:`with_train_clips`).
    ``workers``: generation processes (default :func:`default_workers`); the output does not depend on it
    (every clip has its own random stream and the CSV rows keep the job order).
    Writes in place; use :func:`ensure` for the cached, crash-safe copy under ``coprop.paths.data_dir()``.
    """
    from coprop.errors import ConfigError
    from coprop.progress import progress

    if preset not in PRESETS:
        raise ConfigError(f"unknown synthetic preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = with_train_clips(PRESETS[preset], train_clips)
    out = Path(out)
    jobs = _jobs(p, seed)
    rows: dict[str, list] = {s: [] for s in SUBSET_DIRS}
    metas: dict[str, dict] = {s: {} for s in SUBSET_DIRS}
    t0 = time.perf_counter()
    workers = default_workers() if workers is None else max(1, int(workers))
    work = [(job, p.size, seed, str(out)) for job in jobs]
    if workers > 1 and len(jobs) > 8:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fork where there is one: spawn re-imports the caller's __main__, which fails for stdin/-c callers; the
        # children run numpy and PIL only (no torch/OpenMP work), so the parent's threads do not matter
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            done = list(progress(pool.map(_make_and_write, work, chunksize=8), total=len(work),
                                 desc=f"synth {preset} ({workers} processes)", disable=not progress_bar, unit="clip"))
    else:
        done = [_make_and_write(w) for w in progress(work, desc=f"synth {preset}", disable=not progress_bar,
                                                     unit="clip")]
    for job, (subset, row, meta) in zip(jobs, done):
        rows[subset].append(row)
        metas[subset][job.name] = meta
    for subset, dirname in SUBSET_DIRS.items():
        root = out / dirname
        root.mkdir(parents=True, exist_ok=True)
        fname, header = CSV_FILES[subset]
        write_csv(root / fname, header, rows[subset])
        (root / META).write_text(json.dumps(metas[subset], sort_keys=True) + "\n")
    names = class_names()
    (out / "AVSS" / "label2idx.json").write_text(json.dumps({n: i + 1 for i, n in enumerate(names)}, indent=1) + "\n")
    counts = {s: {sp: sum(1 for j in jobs if j.subset == s and j.split == sp) for sp in SPLITS} for s in SUBSET_DIRS}
    manifest = {
        "generator": "coprop.data.synth", "version": GENERATOR_VERSION, "preset": preset, "seed": seed,
        "size": p.size, "categories": list(CATEGORIES), "clips": counts,
        "frames": sum(j.num_frames for j in jobs), "seconds": round(time.perf_counter() - t0, 2),
        "synthetic": True, "note": p.note, "train_clips": train_clips,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def _complete(root: Path, preset: str, seed: int, train_clips: int | None = None) -> bool:
    try:
        m = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    want = _jobs(with_train_clips(PRESETS[preset], train_clips), seed) if preset in PRESETS else []
    counts = {s: {sp: sum(1 for j in want if j.subset == s and j.split == sp) for sp in SPLITS} for s in SUBSET_DIRS}
    return (m.get("version") == GENERATOR_VERSION and m.get("preset") == preset and m.get("seed") == seed
            and m.get("clips") == counts)   # a preset whose counts changed is regenerated, not reused


def ensure(preset: str = "smoke", seed: int = 0, progress_bar: bool = True, train_clips: int | None = None,
           workers: int | None = None) -> Path:
    """The benchmark under ``data_dir()/synthetic-<preset>-s<seed>`` (``...-train<N>`` with ``train_clips``),
    generated on first use.

    Generation goes to a temporary sibling folder that is renamed into place when complete, so a crash never
    leaves a half tree, and two processes racing here both end up with the same finished copy.
    """
    from coprop.paths import synthetic_root

    target = synthetic_root(preset, seed)
    if train_clips is not None:
        target = target.with_name(f"{target.name}-train{int(train_clips)}")
    if _complete(target, preset, seed, train_clips):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        generate(tmp, preset, seed, progress_bar=progress_bar, train_clips=train_clips, workers=workers)
        if target.exists() and not _complete(target, preset, seed, train_clips):
            stale = target.parent / f".{target.name}.stale-{os.getpid()}"
            os.replace(target, stale)  # an older generator version or a foreign folder: move it aside
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _complete(target, preset, seed, train_clips):  # lost a race to a finished copy is fine; anything else isn't
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_root(data_root: str | Path | None, preset: str = "smoke", seed: int = 0) -> Path:
    """``data_root`` when given (a real AVSBench tree), else the synthetic benchmark for ``preset``/``seed``."""
    from coprop.errors import DataError

    if data_root:
        root = Path(data_root).expanduser()
        if not root.exists():
            raise DataError(root, "data_root does not exist",
                            "point it at the AVSBench folder, or leave it empty for the synthetic benchmark")
        return root
    return ensure(preset, seed)


def is_synthetic(root: str | Path) -> bool:
    """True when ``root`` (top folder or one subset folder) was written by this generator."""
    root = Path(root)
    return (root / MANIFEST).exists() or (root / META).exists() or (root.parent / MANIFEST).exists()


def disk_size(root: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file())


def summary(root: str | Path) -> str:
    """Human-readable counts: clips per subset and split, frames, size on disk."""
    root = Path(root)
    m = json.loads((root / MANIFEST).read_text())
    from coprop.data.provenance import SYNTHETIC_NOTE

    lines = [SYNTHETIC_NOTE,
             f"synthetic benchmark at {root} (preset {m['preset']}, seed {m['seed']}, {m['size']}x{m['size']} px)"]
    for subset, dirname in SUBSET_DIRS.items():
        c = m["clips"][subset]
        mb = disk_size(root / dirname) / 1e6
        lines.append(f"  {dirname:<15} " + "  ".join(f"{sp} {c[sp]:>3}" for sp in SPLITS) + f"   {mb:7.1f} MB")
    lines.append(f"  {sum(sum(c.values()) for c in m['clips'].values())} clips, {m['frames']} frames, "
                 f"{disk_size(root) / 1e6:.1f} MB on disk, generated in {m['seconds']:.1f} s")
    return "\n".join(lines)


def cli(argv: list[str]) -> int:
    ap = ArgumentParser(prog="coprop synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="", help="output folder (default: data/synthetic-<preset>-s<seed>, reused "
                                               "when already complete)")
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=nonneg_int, default=0)
    ap.add_argument("--train-clips", type=nonneg_int, default=None,
                    help="training clips per subset (S4, MS3 and AVSS alike) instead of the preset's")
    ap.add_argument("--workers", type=nonneg_int, default=None, help="generation processes (default: 1 per core, "
                                                                       "at most 2)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    root = generate(a.out, a.preset, a.seed, train_clips=a.train_clips, workers=a.workers) if a.out else \
        ensure(a.preset, a.seed, train_clips=a.train_clips, workers=a.workers)
    print(summary(root))
    print(f"  wall time {time.perf_counter() - t0:.1f} s")
    return 0
