"""Segment your own video: ``coprop infer VIDEO --checkpoint RUN --out DIR``.

Writes into DIR:
    masks/frame_0000.png ...   one mask per sampled frame (binary: 0/255; semantic: class ids, VOC palette)
    overlay.mp4                the sampled frames with the masks overlaid, WITH the original soundtrack
    control_points.json        the control points used, the segments, the frame times
    timings.json               seconds per stage (decode, control points, keyframes, propagation, writing)

``RUN`` is a run folder trained by coprop (``runs/demo`` from ``coprop demo``, one of its ``seed<k>`` folders, or
a ``coprop train`` run folder holding config.json and keyframe/propagator weights).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from coprop.errors import CopropError, WeightsError
from coprop.io import write_json

SOURCES = ("learned", "cosine", "first-frame")


class CheckpointError(WeightsError):
    """The --checkpoint folder is missing or holds no trained Co-Prop models."""


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """(folder with the keyframe + propagator weights, suite seed folder or None) for RUN, RUN/seed0 or RUN/main."""
    from coprop.experiments import resolve_path

    p = resolve_path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: checkpoint folder not found; train one with `coprop demo` (runs/demo) or "
                              f"`coprop train`, then pass --checkpoint runs/demo")
    for cand, suite in ((p / "seed0" / "main", p / "seed0"), (p / "main", p), (p, None)):
        if (cand / "config.json").is_file():
            return cand, suite if suite is not None and (suite / "suite.json").is_file() else None
    raise CheckpointError(f"{p}: no trained models here (no config.json); pass a run folder such as runs/demo "
                          f"made by `coprop demo` or `coprop train`")


def _mask_png(path: Path, mask: np.ndarray, semantic: bool) -> None:
    from PIL import Image

    from coprop.io import atomic_path

    if semantic:
        from coprop.data.images import voc_palette

        img = Image.fromarray(mask.astype(np.uint8), mode="P")
        img.putpalette(voc_palette(256).astype(np.uint8).reshape(-1).tolist())
    else:
        img = Image.fromarray((mask > 0).astype(np.uint8) * 255, mode="L")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def control_point_source(name: str, suite_dir: Path | None, train_data: str, echo=print):
    """The fitted source: 'learned' is trained on the run's training data (suite.json) or on ``train_data``."""
    from coprop import experiments as E
    from coprop.controlpoints.detectors import get_source

    if name == "first-frame":
        return None
    if name == "cosine":
        return get_source("cosine", fit_threshold=False)
    if train_data:
        data = E.Data(train_data if Path(train_data).exists() else "", train_data if not Path(train_data).exists()
                      else "smoke", "ms3", 0)
    elif suite_dir is not None:
        info = json.loads((suite_dir / "suite.json").read_text())
        data = E.Data(info["data_root"], info["synthetic_preset"], info["subset"], info["data_seed"])
    else:
        raise CopropError("--source learned needs training clips: pass --train-data AVSBENCH_ROOT (or a synthetic "
                          "preset name such as demo), or use --source cosine")
    cached = E.cached_source(suite_dir, "learned", data) if suite_dir is not None else None
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    src = get_source("learned").fit(data.split("train"))
    echo(f"fitted the learned control-point detector on {data.root} in {time.perf_counter() - t0:.1f} s")
    return src


def infer(video: str | Path, checkpoint: str | Path, out: str | Path, fps: float = 1.0, source: str = "learned",
          train_data: str = "", max_seconds: float | None = None, device: str = "cpu", echo=print) -> dict:
    """Run Co-Prop on one video file and write masks, overlay video, control points and timings into ``out``."""
    import torch

    from coprop.data.media import read_video, write_video
    from coprop.pipeline import CoProp
    from coprop.train import load_run
    from coprop.viz import overlay

    if source not in SOURCES:
        raise CopropError(f"--source {source!r}: choose one of {', '.join(SOURCES)}")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    run_dir, suite_dir = resolve_checkpoint(checkpoint)        # checked before the (slow) decode
    clip = read_video(video, fps=fps, max_seconds=max_seconds)
    times["decode_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    try:
        run = load_run(run_dir, stages=None, device=device)
    except CopropError as e:
        raise CheckpointError(f"{run_dir}: cannot load the trained models ({e})") from None
    if run.keyframe is None or run.propagator is None:
        raise CheckpointError(f"{run_dir}: the run needs a keyframe model and a propagator (it has "
                              f"{', '.join(run.stages) or 'none'}); train them with `coprop demo` or `coprop train`")
    times["load_models_s"] = time.perf_counter() - t
    t = time.perf_counter()
    src = control_point_source(source, suite_dir, train_data, echo)
    cps = [1] + [0] * (clip.num_frames - 1) if src is None else [int(v) for v in src(clip)]
    times["control_points_s"] = time.perf_counter() - t
    pipe = CoProp(run.keyframe, run.propagator, None, run.cfg)
    t = time.perf_counter()
    with torch.no_grad():
        pred = pipe.predict(clip, control_points=cps)
    times["segmentation_s"] = time.perf_counter() - t
    times.update({f"{k}_ms": float(v) for k, v in pred.timings_ms.items()})
    t = time.perf_counter()
    out = Path(out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    masks = pred.masks().numpy()
    semantic = pred.mode == "semantic"
    for i, m in enumerate(masks):
        _mask_png(out / "masks" / f"frame_{i:04d}.png", m, semantic)
    frames = np.stack([overlay(f, m, color=None if semantic else (230, 25, 75)) for f, m in zip(clip.frames, masks)])
    write_video(out / "overlay.mp4", frames, fps=fps, audio=clip.waveform)
    times["write_s"] = time.perf_counter() - t
    times["total_s"] = time.perf_counter() - t0
    times["frames"] = clip.num_frames
    times["ms_per_frame"] = 1000 * times["segmentation_s"] / max(1, clip.num_frames)
    times["device"] = str(device)
    segs = [[s, e] for s, e in _segments(cps)]
    write_json(out / "control_points.json", {
        "video": str(video), "source": source, "control_points": cps, "segments": segs,
        "keyframes": pred.keyframes, "frame_times_s": [float(x) for x in clip.frame_times], "fps": fps,
        "checkpoint": str(run_dir)})
    write_json(out / "timings.json", times)
    return {"frames": clip.num_frames, "control_points": cps, "out": str(out), **times}


def _segments(cps: list[int]) -> list[tuple[int, int]]:
    starts = [t for t, c in enumerate(cps) if c] + [len(cps)]
    return list(zip(starts[:-1], starts[1:]))


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="coprop infer", description=__doc__.split("\n\n")[0])
    ap.add_argument("video", help="video file with a soundtrack (mp4, mov, mkv)")
    ap.add_argument("--checkpoint", required=True, help="trained run folder, e.g. runs/demo")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--fps", type=float, default=1.0, help="frames per second to segment (AVSBench: 1)")
    ap.add_argument("--source", default="learned", choices=SOURCES,
                    help="control points: learned detector, cosine audio similarity, or only the first frame")
    ap.add_argument("--train-data", default="", help="training clips for --source learned when the run does not "
                    "record them: an AVSBench root or a synthetic preset name")
    ap.add_argument("--max-seconds", type=float, default=None, help="only the first N seconds")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    args = ap.parse_args(argv)
    res = infer(args.video, args.checkpoint, args.out, args.fps, args.source, args.train_data, args.max_seconds,
                args.device)
    print(f"{res['frames']} frames, control points {res['control_points']}, "
          f"{res['ms_per_frame']:.0f} ms/frame -> {res['out']}/ (masks/, overlay.mp4, control_points.json, "
          f"timings.json)")
    return 0
