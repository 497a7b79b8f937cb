"""Inputs for the ``coprop infer`` benchmarks: test videos made with PyAV and a tiny run folder with random weights.

Speed and memory do not depend on the weight values (nothing here measures accuracy). The videos are a moving
scene (a gradient background, two moving boxes, a little noise) with a two-tone stereo soundtrack, h264 + aac.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_video(path: Path, width: int, height: int, seconds: float, rate: float, audio_rate: int = 44100,
               preset: str = "veryfast", noise: bool = True) -> Path:
    """Write an h264/aac mp4 of ``seconds`` s at ``rate`` frames/s (skipped when it already exists)."""
    import av

    path = Path(path)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(xx * 255 // max(1, width - 1)), (yy * 255 // max(1, height - 1)),
                     np.full_like(xx, 96)], -1).astype(np.uint8)
    grain = rng.integers(0, 12, size=(8, height, width, 1), dtype=np.uint8) if noise else None
    n = int(round(seconds * rate))
    frac = Fraction(rate).limit_denominator(1001)
    with av.open(str(tmp), "w") as o:
        vs = o.add_stream("libx264", rate=frac)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": preset, "crf": "23"}
        a = o.add_stream("aac", rate=audio_rate, layout="stereo")
        bw, bh = max(8, width // 6), max(8, height // 5)
        for i in range(n):
            img = base.copy()
            for j, speed in enumerate((3, 5)):
                x = (i * speed + j * width // 2) % max(1, width - bw)
                y = (height // 3 * (j + 1) - bh // 2) % max(1, height - bh)
                img[y:y + bh, x:x + bw] = (230, 40 + 150 * j, 40)
            if grain is not None:
                img += grain[i % len(grain)]
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, 1 / frac
            o.mux(vs.encode(f))
        o.mux(vs.encode(None))
        total = int(seconds * audio_rate)
        for s in range(0, total, 4096):
            t = np.arange(s, min(total, s + 4096)) / audio_rate
            wav = np.stack([0.2 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
            af = av.AudioFrame.from_ndarray(wav, format="fltp", layout="stereo")
            af.sample_rate, af.pts, af.time_base = audio_rate, s, Fraction(1, audio_rate)
            o.mux(a.encode(af))
        o.mux(a.encode(None))
    os.replace(tmp, path)
    return path


def make_run(path: Path, config: str = "tiny") -> Path:
    """A run folder (config.json + keyframe/propagator safetensors) with random weights of ``config``."""
    from coprop.models.config import get_config
    from coprop.train.checkpoint import save_weights
    from coprop.train.run import WEIGHTS, build_model, record_stage

    path = Path(path)
    if (path / "config.json").is_file():
        return path
    cfg = get_config(config)
    for stage in ("keyframe", "propagator"):
        model = build_model(stage, cfg)
        save_weights(path / WEIGHTS[stage], model, {"stage": stage, "model": cfg.to_dict()})
        record_stage(path, cfg, stage, {"note": "random weights, built by benchmarks/_videos.py"})
    return path


def run_infer(video: Path, run: Path, out: Path, fps: float, source: str = "cosine", threads: int = 1,
              extra: tuple[str, ...] = ()) -> dict:
    """``coprop infer`` in a fresh process: its wall time, peak RSS (MB, the kernel's ru_maxrss) and timings.json."""
    import json

    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "coprop", "infer", str(video), "--checkpoint", str(run), "--out", str(out),
           "--fps", f"{fps:g}", "--source", source, *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"coprop infer failed ({proc.returncode}): {stderr.strip()[-2000:]}")
    timings = json.loads((Path(out) / "timings.json").read_text())
    return {"process_wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0, "cpu_s": usage.ru_utime + usage.ru_stime,
            "timings": timings, "stdout": stdout.strip()}


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())



def markdown_table(df) -> str:
    """A pandas DataFrame as a Markdown table (floats with 2 decimals)."""
    def cell(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write_report(df, name: str, tag: str, heading: str, columns: list[str] | None = None) -> Path:
    """``df`` as reports/performance/NAME[_TAG].csv (all columns) and .md (``heading`` + a table of ``columns``)."""
    from coprop.paths import reports_dir

    out = reports_dir() / "performance"
    out.mkdir(parents=True, exist_ok=True)
    name = name + (f"_{tag}" if tag else "")
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(heading + "\n\n" + markdown_table(df[columns or list(df.columns)]) + "\n")
    print(f"wrote {out / name}.csv and .md")
    return out / f"{name}.csv"
