"""Where ``coprop infer`` spends its CPU: ms of CPU per frame for each stage, measured one stage at a time.

Every stage runs alone, in order, in this one process (no overlap), on the benchmark's video
(benchmarks/_videos.py) and a tiny random-weight run folder, with ``--threads`` torch threads. CPU time is
the process's (time.process_time: every thread, ffmpeg's and x264's included), so it does not depend on how
loaded the shared machine is; wall ms are printed beside it. Start-up stages are given in ms per video
(imports are measured in a fresh interpreter).

    python benchmarks/infer_profile.py                     # 640x480 at 30 frames/s, --fps 30, 8 s
    python benchmarks/infer_profile.py --size 1280x720 --out reports/performance/infer_profile_720p.csv
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._videos import make_run, make_video  # noqa: E402


class Clock:
    """Sums process CPU and wall seconds per stage name."""

    def __init__(self):
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def __call__(self, name: str):
        clock = self

        class _Ctx:
            def __enter__(self):
                self.c, self.w = time.process_time(), time.perf_counter()

            def __exit__(self, *exc):
                clock.cpu[name] = clock.cpu.get(name, 0.0) + time.process_time() - self.c
                clock.wall[name] = clock.wall.get(name, 0.0) + time.perf_counter() - self.w

        return _Ctx()


def import_cost() -> tuple[float, float]:
    """(CPU s, wall s) of importing what ``coprop infer`` imports, in a fresh interpreter."""
    code = ("import time, resource; t = time.perf_counter(); import coprop.cli, coprop.infer, torch; "
            "import coprop.controlpoints.features, coprop.data.media, coprop.data.video_frames; "
            "import coprop.data.video_writer, coprop.infer_stream, coprop.pipeline, coprop.train; "
            "u = resource.getrusage(resource.RUSAGE_SELF); "
            "print(u.ru_utime + u.ru_stime, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="")
    ap.add_argument("--out", default="", help="CSV of the table (default: print only)")
    ap.add_argument("--no-fuse", action="store_true", help="keep the backbone's BatchNorm layers unfolded")
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work or tempfile.mkdtemp(prefix="coprop-infer-prof-"))
    run = make_run(work / "run-tiny", "tiny")
    video = make_video(work / f"v{w}x{h}_{args.rate:g}fps_{args.seconds:g}s.mp4", w, h, args.seconds, args.rate)
    out = work / "prof-out"
    (out / "masks").mkdir(parents=True, exist_ok=True)
    imp_cpu, imp_wall = import_cost()

    from coprop import infer as I
    from coprop.infer import ENCODE_BATCH
    from coprop.controlpoints import features as F
    from coprop.data.media import read_soundtrack
    from coprop.data.video_frames import iter_frames, plan_frames
    from coprop.data.video_writer import VideoWriter, source_soundtrack
    from coprop.infer_fast import fuse_conv_bn
    from coprop.infer_stream import MaskPainter, logits_to_mask, model_input, save_mask_png
    from coprop.models.backbones import loading_trained
    from coprop.pipeline import CoProp
    from coprop.pipeline.predict import encode_frames
    from coprop.train import load_run

    c = Clock()
    with c("start: plan frames (demux)"):
        plan = plan_frames(video, fps=args.fps)
    with c("start: read soundtrack"):
        wav, _ = read_soundtrack(video, plan.t0)
    with c("start: load models (build without timm, weights)"), loading_trained():
        r = load_run(run, stages=None, device="cpu")
    with c("start: control points + log-mel"):
        aclip = I._audio_clip(plan, wav, video)
        cps = [int(v) for v in I.control_point_source("cosine", None, "", print)(aclip)]
        logmel = F.clip_logmel(aclip)
    pipe = CoProp(r.keyframe, r.propagator, None, r.cfg)
    if not args.no_fuse:
        with c("start: fold BatchNorm into convs"):
            fuse_conv_bn(pipe.propagator.backbone, torch.zeros(1, 3, pipe.size, pipe.size))
    stream = pipe.stream(cps)
    paint = MaskPainter(False)
    frames, images = [], []
    with c("decode + RGB (full size)"):
        for k, rgb, ft, rot in iter_frames(video, fps=args.fps):
            frames.append(rgb)
    n = len(frames)
    with c("prepare: uint8 resize to model size + normalise"):
        images = [model_input(f, pipe.size) for f in frames]
    prop = pipe.propagator
    parts = {"backbone": prop.backbone, "audio encoder": prop.guidance, "audio insert": prop.inserts,
             "LSTT": prop.blocks, "decoder": prop.decoder}
    model_cpu: dict[str, float] = {}
    for name, mod in parts.items():
        def pre(m, a, name=name):
            m._t = time.process_time()

        def post(m, a, o, name=name):
            model_cpu[name] = model_cpu.get(name, 0.0) + time.process_time() - m._t
        targets = mod.values() if isinstance(mod, torch.nn.ModuleDict) else \
            (mod if isinstance(mod, torch.nn.ModuleList) else [mod])
        for t in targets:
            t.register_forward_pre_hook(pre)
            t.register_forward_hook(post)
    logits = []
    for k0 in range(0, n, ENCODE_BATCH):
        ks = list(range(k0, min(n, k0 + ENCODE_BATCH)))
        with c(f"model: encode ahead, {ENCODE_BATCH} frames a call (backbone, audio, insert)"), torch.inference_mode():
            encoded = encode_frames(prop, torch.cat([images[k][1] for k in ks]), torch.as_tensor(logmel[ks])[:, None])
        for k, enc in zip(ks, encoded):
            with c("model: push (memory attention, decoder)"):
                logits.append(stream.push(images[k][0], logmel[k], image=images[k][1], encoded=enc))
    with c("logits -> uint8 mask at full size"):
        masks = [logits_to_mask(lg, f.shape[:2], False) for lg, f in zip(logits, frames)]
    with c("paint overlay"):
        painted = [paint(f, m) for f, m in zip(frames, masks)]
    with c("mask PNG (write + rename)"):
        for k, m in enumerate(masks):
            save_mask_png(out / "masks" / f"frame_{k:04d}.png", m, False)
    with c("overlay: x264 encode + soundtrack"):
        with VideoWriter(out / "overlay.mp4", args.fps, source_soundtrack(video, start=plan.t0),
                         preset="ultrafast") as wr:
            for p in painted:
                wr.write(p)
    rows = [("start: imports (fresh interpreter)", imp_cpu, imp_wall, "per video")]
    for name in c.cpu:
        per = "per video" if name.startswith("start") else "per frame"
        div = 1 if per == "per video" else n
        rows.append((name, c.cpu[name] / div, c.wall[name] / div, per))
    for name, v in model_cpu.items():
        rows.append((f"  propagator/{name}", v / n, float("nan"), "per frame"))
    total_frame = sum(c.cpu[k] for k in c.cpu if not k.startswith("start"))
    total_start = imp_cpu + sum(c.cpu[k] for k in c.cpu if k.startswith("start"))
    print(f"{args.size}@{args.rate:g} --fps {args.fps:g}, {n} frames, {args.threads} torch thread(s)")
    print(f"{'stage':<70} {'CPU ms':>8} {'wall ms':>8}")
    for name, cpu, wall, per in rows:
        print(f"{name:<70} {1000 * cpu:8.2f} {1000 * wall:8.2f}  {per}")
    vs = n / args.fps
    print(f"per-frame CPU total {1000 * total_frame / n:.1f} ms; start-up CPU {total_start:.2f} s; "
          f"CPU s per video s {(total_frame + total_start) / vs:.2f}")
    if args.out:
        import csv

        with open(args.out, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["stage", "cpu_ms", "wall_ms", "per"])
            for name, cpu, wall, per in rows:
                wr.writerow([name, f"{1000 * cpu:.3f}", f"{1000 * wall:.3f}", per])
    return 0


if __name__ == "__main__":
    sys.exit(main())
