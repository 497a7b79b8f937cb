"""Is ``coprop infer`` faster than real time? Video seconds per wall second, end to end, on this machine.

Each case makes a test video (benchmarks/_videos.py: moving boxes over a gradient, stereo soundtrack), then runs
``coprop infer VIDEO --checkpoint RUN --fps F --source cosine`` in a fresh process on a tiny run folder with
random weights (speed does not depend on the weight values), and reports

    realtime          video seconds / wall seconds of the streaming part, decode -> segment -> write of every
                      frame (mask PNGs, overlay encoding, soundtrack): > 1 is faster than real time
    realtime_infer    the same over all of infer() (also reading the soundtrack, control points, model loading)
    realtime_process  the same over the whole process (also Python and torch start-up)
    cpu_per_video_s   CPU seconds the process used per video second (all threads, ffmpeg's and x264's included):
                      on an idle machine with N cores, real time needs this below N

plus the busy seconds of each streaming stage and the load average when the case started (the CPU machine is
shared, so timings are only as good as that load). CSV + Markdown into reports/performance/.

    python benchmarks/infer_realtime.py                                  # default cases, 8 s videos
    python benchmarks/infer_realtime.py --cases 640x480@30:30 --repeat 3 --threads 1
    python benchmarks/infer_realtime.py --cases 640x480@30:30:8,640x480@30:30:30   # WxH@RATE:FPS[:SECONDS]

The start-up is paid once per video, so realtime_infer and realtime_process grow with the video's length towards
realtime: inside infer() (reading the soundtrack, control points, loading the models, which no longer imports
timm) about 0.6 s of CPU, before it (Python, importing torch) about 2.6 s.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._videos import load_avg, make_run, make_video, run_infer, write_report  # noqa: E402

DEFAULT_CASES = "640x480@30:30,640x360@25:25,1280x720@30:30,1920x1080@30:30,640x480@30:1"


def parse_case(text: str) -> tuple[int, int, float, float, float | None]:
    """'WxH@RATE:FPS[:SECONDS]' -> (width, height, video frame rate, --fps, seconds or None for --seconds)."""
    try:
        size, rest = text.split("@")
        rate, fps, *sec = rest.split(":")
        w, h = size.lower().split("x")
        if len(sec) > 1:
            raise ValueError
        return int(w), int(h), float(rate), float(fps), (float(sec[0]) if sec else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a case is WxH@RATE:FPS[:SECONDS], e.g. 640x480@30:30 or "
                                         f"640x480@30:30:30, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    from coprop.cli_args import ArgumentParser, positive_float, positive_int

    ap = ArgumentParser(prog="infer_realtime", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=DEFAULT_CASES,
                    help=f"comma-separated WxH@RATE:FPS[:SECONDS] (default {DEFAULT_CASES})")
    ap.add_argument("--seconds", type=positive_float, default=8.0, help="video length in seconds of cases that "
                    "do not give one")
    ap.add_argument("--repeat", type=positive_int, default=1, help="runs per case (all are recorded)")
    ap.add_argument("--threads", type=positive_int, default=1, help="torch/OpenMP threads of the infer process")
    ap.add_argument("--config", default="tiny", help="model config of the random-weight run folder")
    ap.add_argument("--work", default="", help="folder for the videos and outputs (default: a temporary one)")
    ap.add_argument("--tag", default="", help="suffix of the output file names")
    args = ap.parse_args(argv)
    cases = [parse_case(c) for c in args.cases.split(",") if c]
    import pandas as pd

    work = Path(args.work or tempfile.mkdtemp(prefix="coprop-infer-rt-"))
    run = make_run(work / f"run-{args.config}", args.config)
    rows = []
    for w, h, rate, fps, seconds in cases:
        seconds = seconds or args.seconds
        video = make_video(work / f"v{w}x{h}_{rate:g}fps_{seconds:g}s.mp4", w, h, seconds, rate)
        for r in range(args.repeat):
            load = load_avg()
            res = run_infer(video, run, work / f"out-{w}x{h}-{rate:g}-{fps:g}-{seconds:g}-{r}", fps,
                            threads=args.threads)
            t = res["timings"]
            rows.append({"case": f"{w}x{h}@{rate:g}", "fps": fps, "frames": t["frames"], "video_s": t["video_s"],
                         "realtime": t["video_s"] / t["stream_s"], "realtime_infer": t["video_s"] / t["total_s"],
                         "realtime_process": t["video_s"] / res["process_wall_s"],
                         "cpu_per_video_s": res["cpu_s"] / t["video_s"], "total_s": t["total_s"],
                         "process_wall_s": res["process_wall_s"], "stream_s": t["stream_s"],
                         "decode_busy_s": t["decode_s"], "segment_busy_s": t["segmentation_s"],
                         "write_busy_s": t["write_s"], "load_models_s": t["load_models_s"],
                         "ms_per_frame_model": t["ms_per_frame"], "cpu_s": res["cpu_s"],
                         "peak_rss_mb": res["peak_rss_mb"], "threads": args.threads, "config": args.config,
                         "load_avg_start": load, "load_avg_end": load_avg()})
            row = rows[-1]
            print(f"{row['case']:>16} --fps {fps:<4g} {row['frames']:5d} frames: {row['realtime']:.2f} video s per "
                  f"wall s streaming ({row['realtime_infer']:.2f} all of infer, {row['realtime_process']:.2f} with "
                  f"start-up), {row['cpu_per_video_s']:.2f} CPU s per video s, load {load}", flush=True)
    cols = ["case", "fps", "video_s", "frames", "realtime", "realtime_infer", "realtime_process", "cpu_per_video_s",
            "decode_busy_s", "segment_busy_s", "write_busy_s", "peak_rss_mb", "threads", "load_avg_start"]
    df = pd.DataFrame(rows)
    goal = df[(df.case == "640x480@30") & (df.fps == 30)]
    verdict = "" if goal.empty else "\n\n## Target: 640x480 at 30 frames/s, --fps 30, faster than real time\n\n" + \
        "\n".join(f"- {v:g} s video: streaming (decode, segment, encode) best {g.realtime.max():.2f}, all of "
                  f"infer() with its start-up best {g.realtime_infer.max():.2f}, whole process "
                  f"{g.realtime_process.max():.2f} video s per wall s -> streaming "
                  f"{'met' if g.realtime.max() > 1 else 'NOT met'}, with start-up "
                  f"{'met' if g.realtime_infer.max() > 1 else 'NOT met'}" for v, g in goal.groupby("video_s")) + \
        "\n\n(at the load averages in the table)"
    write_report(df, "infer_realtime_cpu", args.tag,
                 "# coprop infer: video seconds per wall second (> 1 = faster than real time)\n\n"
                 f"Tiny config, random weights, --source cosine, videos video_s seconds long, {args.threads} torch "
                 "thread(s). load_avg_start: 1/5/15-minute load average of the shared CPU machine when the case "
                 "started." + verdict, cols)
    return 0


if __name__ == "__main__":
    sys.exit(main())
