"""Segment your own video: ``coprop infer VIDEO --checkpoint RUN --out DIR``.

Writes into DIR, frame by frame as the video is decoded (memory does not grow with the video's length):
    masks/frame_0000.png ...   one mask per sampled frame, as the video is played (display rotation applied):
                               binary 0/255, semantic class ids with the VOC palette
    overlay.mp4                the sampled frames with the masks overlaid, with the original soundtrack (its
                               sample rate and channels)
    control_points.json        the control points used, the segments, the frame times, the rotation applied
    timings.json               seconds per stage (audio, control points, decode, segmentation, writing)

``RUN`` is a run folder trained by coprop (``runs/demo`` from ``coprop demo``, one of its ``seed<k>`` folders, or
a ``coprop train`` run folder holding config.json and keyframe/propagator weights).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from coprop.errors import CopropError, WeightsError
from coprop.io import write_json

SOURCES = ("learned", "cosine", "first-frame")
ENCODE_BATCH = 8     # frames per batched encode in the decode thread (20.5 -> 10.2 ms CPU per frame, tiny config)


class CheckpointError(WeightsError):
    """The --checkpoint folder is missing or holds no trained Co-Prop models."""


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """(folder with the keyframe + propagator weights, suite seed folder or None) for RUN, RUN/seed0 or RUN/main.

    A relative RUN is looked up in the current folder first, then in the coprop checkout (so ``runs/demo``
    works from anywhere); a miss names both places. Raises CheckpointError.
    """
    from coprop.paths import repo_root

    given = Path(path).expanduser()
    places = [given] if given.is_absolute() else list(dict.fromkeys([Path.cwd() / given, repo_root() / given]))
    found = [p for p in places if p.exists()]
    if not found:
        where = " or ".join(str(p) for p in places)
        raise CheckpointError(f"{path}: checkpoint folder not found (looked for {where}); train one with "
                              f"`coprop demo` (runs/demo) or `coprop train`, then pass --checkpoint runs/demo")
    p = found[0]
    for cand, suite in ((p / "seed0" / "main", p / "seed0"), (p / "main", p), (p, None)):
        if (cand / "config.json").is_file():
            return cand, suite if suite is not None and (suite / "suite.json").is_file() else None
    raise CheckpointError(f"{p}: no trained models here (no config.json); pass a run folder such as runs/demo "
                          f"made by `coprop demo` or `coprop train`")


def trained_on_synthetic(run_dir: Path, suite_dir: Path | None) -> bool | None:
    """Whether the run's training data was coprop's synthetic benchmark (None: the run does not say)."""
    from coprop.data.synth import is_synthetic

    if suite_dir is not None:
        info = json.loads((suite_dir / "suite.json").read_text())
        return not info.get("data_root") or is_synthetic(info["data_root"])
    data = json.loads((run_dir / "config.json").read_text()).get("data") or {}
    if "synthetic" in data:
        return bool(data["synthetic"])
    root = data.get("root")
    return is_synthetic(root) if root and Path(root).exists() else None


def _inside_synthetic_tree(video: Path) -> bool:
    from coprop.data.synth import is_synthetic

    return any(is_synthetic(p) for p in Path(video).resolve().parents)


def control_point_source(name: str, suite_dir: Path | None, train_data: str, echo=print):
    """The fitted source: 'learned' is trained on the run's training data (suite.json) or on ``train_data``."""
    from coprop.controlpoints.detectors import get_source

    if name == "first-frame":
        return None
    if name == "cosine":
        return get_source("cosine", fit_threshold=False)
    from coprop import experiments as E    # only here: it imports pandas & co. (0.4 s CPU of start-up)
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


SYNTHETIC_WARNING = ("warning: this checkpoint was trained on coprop's synthetic benchmark (drawn shapes and "
                     "generated tones), not on real videos, so its masks on {video} do not mean anything; "
                     "train on AVSBench (coprop train --data-root AVSBENCH_ROOT) to segment real videos")


def _audio_clip(plan, wav: np.ndarray, video: Path):
    """The Clip the control-point sources see before any frame is decoded: the soundtrack and the planned frame
    times. Its frames are 1x1 black pictures: every source infer offers (cosine, learned) reads only the audio."""
    from coprop.data.clip import Clip

    meta = {"name": video.stem, "subset": "video", "split": "", "category": "", "mode": "binary",
            "source": str(video), "fps": plan.fps, "video_fps": plan.video_fps}
    return Clip(frames=np.zeros((plan.num_frames, 1, 1, 3), np.uint8), waveform=wav, frame_times=plan.times,
                meta=meta)


def infer(video: str | Path, checkpoint: str | Path, out: str | Path, fps: float = 1.0, source: str = "learned",
          train_data: str = "", max_seconds: float | None = None, device: str = "cpu", echo=print,
          warn=None, queue_size: int = 4, x264_preset: str = "ultrafast", threads: int = 1) -> dict:
    """Run Co-Prop on one video file, streaming: masks and overlay frames are written as they are segmented.

    Order: the soundtrack (16 kHz mono, 38 MB for ten minutes) and the frame times (demuxed, not decoded) are
    read first, the control points decided from them, then frames are decoded -> segmented -> written one at a
    time (coprop.infer_stream), so memory does not grow with the video's length (the decode thread holds up to
    ENCODE_BATCH frames while it encodes them ahead in one batch, the queues ``queue_size`` each). Frames are turned upright by
    the video's display matrix as players do (the angle is recorded in control_points.json).
    Writes out/masks/frame_NNNN.png (uint8: 0/255 binary, class ids + VOC palette semantic), out/overlay.mp4
    (the sampled frames with the masks, with the original soundtrack at its own rate and channels),
    control_points.json and timings.json. ``warn`` (default: stderr) gets the one synthetic-checkpoint warning.
    ``threads``: torch intra-op threads on the CPU while streaming (restored afterwards). One is the default: the
    decode and encode threads need the other core, and torch's default pool (one thread per core) fighting them
    made the tiny model 15x slower per frame (843 vs 57 ms, 640x480 at --fps 30 on 2 cores).
    Raises CheckpointError, DataError (naming the file), CopropError, ValueError (fps <= 0, max_seconds that
    leaves no frame). Paper: Sec. 3 (control points -> keyframes -> audio-insert propagation).
    """
    import sys

    import torch

    from coprop.controlpoints import features as F
    from coprop.data.media import read_soundtrack
    from coprop.data.video_frames import iter_frames, plan_frames
    from coprop.data.video_writer import VideoWriter, source_soundtrack
    from coprop.infer_stream import MaskPainter, logits_to_mask, model_input, run_stream, save_mask_png
    from coprop.models.backbones import loading_trained
    from coprop.models.common import prepare_frames
    from coprop.pipeline import CoProp
    from coprop.pipeline.predict import encode_frames, takes_encoded
    from coprop.train import load_run

    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    if source not in SOURCES:
        raise CopropError(f"--source {source!r}: choose one of {', '.join(SOURCES)}")
    video, out = Path(video), Path(out)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    run_dir, suite_dir = resolve_checkpoint(checkpoint)        # checked before the (slow) reading
    plan = plan_frames(video, fps=fps, max_seconds=max_seconds)
    wav, audio_sr = read_soundtrack(video, plan.t0, max_seconds=max_seconds)
    times["read_audio_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    try:
        with loading_trained():        # the tiny backbone without timm: 3.3 s CPU less start-up
            run = load_run(run_dir, stages=None, device=device)
    except CopropError as e:
        raise CheckpointError(f"{run_dir}: cannot load the trained models ({e})") from None
    if run.keyframe is None or run.propagator is None:
        raise CheckpointError(f"{run_dir}: the run needs a keyframe model and a propagator (it has "
                              f"{', '.join(run.stages) or 'none'}); train them with `coprop demo` or `coprop train`")
    times["load_models_s"] = time.perf_counter() - t
    warnings = []
    if trained_on_synthetic(run_dir, suite_dir) and not _inside_synthetic_tree(video):
        warnings.append(SYNTHETIC_WARNING.format(video=video.name))
        warn(warnings[-1])
    t = time.perf_counter()
    aclip = _audio_clip(plan, wav, video)
    src = control_point_source(source, suite_dir, train_data, echo)
    cps = [1] + [0] * (plan.num_frames - 1) if src is None else [int(v) for v in src(aclip)]
    logmel = F.clip_logmel(aclip)                              # [T,96,64], shared with the source's memo
    times["control_points_s"] = time.perf_counter() - t
    pipe = CoProp(run.keyframe, run.propagator, None, run.cfg)
    backbone = getattr(pipe.propagator, "backbone", None)
    if isinstance(backbone, torch.nn.Module) and not backbone.training:
        from coprop.infer_fast import fuse_conv_bn

        fuse_conv_bn(backbone, torch.zeros(1, 3, pipe.size, pipe.size, device=pipe.device))
    semantic = pipe.mode == "semantic"
    stream = pipe.stream(cps)
    paint = MaskPainter(semantic)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    got_times, rotations, sizes, notes = [], set(), set(), []
    T = plan.num_frames

    # the model sees the frame resized once, on uint8, in the decode thread; the keyframe model of another
    # input size gets the full frame, and the propagator the float resize that push() would make of it
    small_frames = pipe.keyframe_size == pipe.size
    ahead = takes_encoded(pipe.propagator)

    def frames():
        # decode thread: decode, prepare the model's input and encode it ahead (the stateless half of the
        # model), ENCODE_BATCH frames per call; items: (k, rgb, frame time, rotation, frame pushed, image, encoded)
        batch = []
        for k, rgb, ft, rot in iter_frames(video, fps=fps, max_seconds=max_seconds):
            if k >= T:
                notes.append(f"decoding gave more frames than the timestamps promised; kept the first {T}")
                break
            if small_frames:
                pushed, image = model_input(rgb, pipe.size)
            else:
                pushed, image = rgb, prepare_frames(rgb[None], pipe.size)
            batch.append([k, rgb, ft, rot, pushed, image.to(pipe.device), None])
            if len(batch) == ENCODE_BATCH:
                yield from flush(batch)
                batch = []
        yield from flush(batch)

    def flush(batch):
        if ahead and batch:
            audio = torch.as_tensor(logmel[[b[0] for b in batch]], dtype=torch.float32, device=pipe.device)
            with torch.inference_mode():
                encoded = encode_frames(pipe.propagator, torch.cat([b[5] for b in batch]), audio[:, None])
            for b, enc in zip(batch, encoded):
                b[6] = enc
        yield from batch

    def segment(item):
        # model thread: the stateful half (memory attention, decoder); logits stay at the model's size
        k, _, _, _, pushed, image, encoded = item
        return stream.push(pushed, logmel[k], image=image, encoded=encoded)

    def write(item, logits):
        # write thread: logits -> mask at the frame's size, mask PNG, overlay frame
        k, rgb, ft, rot = item[:4]
        mask = logits_to_mask(logits, rgb.shape[:2], semantic)
        save_mask_png(out / "masks" / f"frame_{k:04d}.png", mask, semantic)
        writer.write(paint(rgb, mask))
        got_times.append(ft)
        rotations.add(rot)
        sizes.add((int(mask.shape[1]), int(mask.shape[0])))

    t = time.perf_counter()
    sound = source_soundtrack(video, start=plan.t0, duration=max_seconds)
    before = torch.get_num_threads()
    if str(device).startswith("cpu"):
        torch.set_num_threads(threads)
    try:
        with VideoWriter(out / "overlay.mp4", fps, sound, preset=x264_preset) as writer:
            stats = run_stream(frames(), segment, write, queue_size=queue_size)
    finally:
        torch.set_num_threads(before)
    times["stream_s"] = time.perf_counter() - t
    if stats.frames < T:
        notes.append(f"the video decoded to {stats.frames} frames, the timestamps promised {T}")
    moved = [k for k, (a, b) in enumerate(zip(got_times, plan.times)) if abs(a - b) > 1e-3]
    if moved:
        notes.append(f"{len(moved)} frame(s) decoded at other times than their timestamps (first: frame "
                     f"{moved[0]}); their audio is that of the timestamp")
    if sound.note:
        notes.append(sound.note)
    times.update({f"{k}_s": v for k, v in stats.busy_s.items()})
    times.update({f"{k}_cpu_s": v for k, v in stats.cpu_s.items()})
    times["segmentation_s"] = times.pop("segment_s")
    times.update({f"{k}_ms": float(v) for k, v in stream.timings_ms.items()})
    times["total_s"] = time.perf_counter() - t0
    n = stats.frames
    times.update(frames=n, ms_per_frame=1000 * times["segmentation_s"] / max(1, n), device=str(device),
                 video_s=n / fps, realtime_factor=(n / fps) / times["total_s"])
    rotation = sorted(rotations)[0] if len(rotations) == 1 else sorted(rotations)
    sizes = sorted(sizes)
    write_json(out / "control_points.json", {
        "video": str(video), "source": source, "control_points": cps[:n], "segments": _segments(cps[:n]),
        "keyframes": stream.keyframes, "frame_times_s": [float(x) for x in got_times],
        "target_times_s": plan.targets[:n].tolist(), "fps": fps, "checkpoint": str(run_dir),
        "rotation_degrees": rotation, "display_size_wh": sizes[0] if len(sizes) == 1 else sorted(sizes),
        "audio": {"rate": sound.rate, "layout": sound.layout, "source_rate": audio_sr},
        "warnings": warnings, "notes": notes})
    write_json(out / "timings.json", times)
    return {"frames": n, "control_points": cps[:n], "out": str(out), "rotation_degrees": rotation,
            "warnings": warnings, "notes": notes, **times}


def _segments(cps: list[int]) -> list[list[int]]:
    from coprop.pipeline import segments

    return [[s, e] for s, e in segments(cps)]


def cli(argv: list[str] | None = None) -> int:
    from coprop.cli_args import ArgumentParser, positive_float, positive_int
    from coprop.data.video_frames import first_frame_time

    ap = ArgumentParser(prog="coprop infer", description=__doc__.split("\n\n")[0])
    ap.add_argument("video", help="video file with a soundtrack (mp4, mov, mkv)")
    ap.add_argument("--checkpoint", required=True, help="trained run folder, e.g. runs/demo (a relative path is "
                    "looked up in the current folder, then in the coprop checkout)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--fps", type=positive_float, default=1.0, help="frames per second to segment (AVSBench: 1)")
    ap.add_argument("--source", default="learned", choices=SOURCES,
                    help="control points: learned detector, cosine audio similarity, or only the first frame")
    ap.add_argument("--train-data", default="", help="training clips for --source learned when the run does not "
                    "record them: an AVSBench root or a synthetic preset name")
    ap.add_argument("--max-seconds", type=positive_float, default=None, help="only the first N seconds")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--threads", type=positive_int, default=1, help="torch threads for the model on the CPU "
                    "(default 1: decoding and encoding run beside it in their own threads)")
    args = ap.parse_args(argv)
    first = first_frame_time(args.fps)
    if args.max_seconds is not None and args.max_seconds <= first:
        ap.error(f"argument --max-seconds: {args.max_seconds:g} s leaves no frame: the first frame is taken at "
                 f"{first:.3f} s at --fps {args.fps:g}")
    res = infer(args.video, args.checkpoint, args.out, args.fps, args.source, args.train_data, args.max_seconds,
                args.device, threads=args.threads)
    keys = [k for k, c in enumerate(res["control_points"]) if c]
    print(f"{res['frames']} frames, {len(keys)} control point(s) at frame(s) {keys[:20]}{' ...' if len(keys) > 20 else ''}, "
          f"{res['ms_per_frame']:.0f} ms/frame, {res['realtime_factor']:.2f}x real time -> {res['out']}/ (masks/, "
          f"overlay.mp4, control_points.json, timings.json)")
    return 0
