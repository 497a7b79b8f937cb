"""Does ``coprop infer``'s memory stay flat in video length? Peak RSS of the whole process per video length.

Each case makes a test video (benchmarks/_videos.py) and runs ``coprop infer`` on it in a fresh process (tiny
run folder, random weights, --source cosine); the peak is the kernel's ru_maxrss of that process (interpreter,
torch, weights and the work). Streaming infer holds a few frames in flight, the 16 kHz soundtrack and one
log-mel example per sampled frame, so the peak should not depend on the length. Targets (issue 11):
640x360 at --fps 25: 32 s within 15 % of 8 s; 1920x1080 at --fps 1 for ten minutes: under 2 GB.

    python benchmarks/infer_memory.py                       # 360p 8 s vs 32 s, and 10 min of 1080p
    python benchmarks/infer_memory.py --cases 640x360@25:25:8,640x360@25:25:32
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._videos import load_avg, make_run, make_video, run_infer, write_report  # noqa: E402

# WxH@RATE:FPS:SECONDS; the 10-minute 1080p video is coded at 5 frames/s with little detail (quick to make;
# it decodes as 1080p, which is what the memory depends on)
DEFAULT_CASES = "640x360@25:25:8,640x360@25:25:32,1920x1080@5:1:60,1920x1080@5:1:600"


def targets(df) -> list[str]:
    """The issue-11 targets, judged on the rows that measure them."""
    lines = ["## Targets", ""]
    s = df[(df.case == "640x360@25") & (df.fps == 25)].set_index("video_s").peak_rss_mb
    if 8 in s.index and 32 in s.index:
        grow = s[32] / s[8] - 1
        lines.append(f"- 640x360 --fps 25, 32 s within 15 % of 8 s: {s[32]:.0f} MB vs {s[8]:.0f} MB = "
                     f"{100 * grow:+.1f} % -> {'met' if grow <= 0.15 else 'NOT met'}")
    big = df[(df.case.str.startswith("1920x1080")) & (df.fps == 1) & (df.video_s >= 600)]
    for _, r in big.iterrows():
        lines.append(f"- 1920x1080 --fps 1, {r.video_s:g} s under 2 GB: {r.peak_rss_mb:.0f} MB -> "
                     f"{'met' if r.peak_rss_mb < 2048 else 'NOT met'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from coprop.cli_args import ArgumentParser, positive_int

    ap = ArgumentParser(prog="infer_memory", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated WxH@RATE:FPS:SECONDS ({DEFAULT_CASES})")
    ap.add_argument("--threads", type=positive_int, default=1, help="torch/OpenMP threads of the infer process")
    ap.add_argument("--work", default="", help="folder for the videos and outputs (default: a temporary one)")
    ap.add_argument("--tag", default="", help="suffix of the output file names")
    args = ap.parse_args(argv)
    import pandas as pd

    work = Path(args.work or tempfile.mkdtemp(prefix="coprop-infer-mem-"))
    run = make_run(work / "run-tiny")
    rows = []
    for case in args.cases.split(","):
        size, rest = case.split("@")
        w, h = (int(v) for v in size.lower().split("x"))
        rate, fps, seconds = (float(v) for v in rest.split(":"))
        big = w * h >= 1920 * 1080
        video = make_video(work / f"v{w}x{h}_{rate:g}fps_{seconds:g}s.mp4", w, h, seconds, rate,
                           preset="ultrafast" if big else "veryfast", noise=not big)
        load = load_avg()
        res = run_infer(video, run, work / f"out-{w}x{h}-{fps:g}-{seconds:g}", fps, threads=args.threads)
        t = res["timings"]
        rows.append({"case": f"{w}x{h}@{rate:g}", "fps": fps, "video_s": seconds, "frames": t["frames"],
                     "peak_rss_mb": res["peak_rss_mb"], "total_s": t["total_s"], "realtime": t["video_s"] / t["total_s"],
                     "threads": args.threads, "load_avg_start": load})
        print(f"{rows[-1]['case']:>16} --fps {fps:<3g} {seconds:5g} s, {t['frames']:5d} frames: peak RSS "
              f"{res['peak_rss_mb']:.0f} MB ({t['total_s']:.0f} s, load {load})", flush=True)
    df = pd.DataFrame(rows)
    write_report(df, "infer_memory_cpu", args.tag,
                 "# coprop infer: peak RSS of the whole process vs video length\n\n"
                 "Tiny config, random weights, --source cosine; ru_maxrss of a fresh `coprop infer` process.\n\n"
                 + "\n".join(targets(df)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
