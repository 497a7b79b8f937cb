"""Frames per second of each Co-Prop stage, for inference and training.

    python benchmarks/throughput.py                                  # tiny + paper, fp32 (+ bf16 on GPU), B = 1, 4
    python benchmarks/throughput.py --configs paper --device cuda --dtypes fp32,bf16

Components (each case in a fresh process, random weights):
  keyframe          Keyframe Processor forward, frames/s
  propagator_step   one Audio-Insert Propagator step with a full memory bank (steady state), frames/s
  pipeline          Co-Prop's streaming API (coprop.pipeline.CoProp.stream().push): uint8 frame in, logits out;
                    keyframe model on control points (every ``--segment-len`` frames), one propagator step on
                    every other frame, over ``--clip-len``-frame clips; B > 1 = B streams pushed round-robin
                    (the API serves one video per stream); frames/s counts every frame of every video
  pipeline_batched  the same work with B videos batched through the models in lockstep (shared control points)
  train_keyframe    keyframe training step: coprop.train.tasks.KeyframeStep (forward + loss) + backward + AdamW,
                    frames/s
  train_propagator  propagator training step on 5-frame clips: coprop.train.tasks.PropagatorStep (forward_train +
                    loss) + backward + AdamW, clips/s
bf16 means ``torch.autocast(dtype=torch.bfloat16)`` and runs on GPU only; on CPU it is recorded as skipped.
Writes ``throughput_<device>[_tag].csv/.md`` into ``--out-dir``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as H  # noqa: E402

COLUMNS = ["device", "config", "component", "dtype", "batch", "size", "fps", "unit", "status", "iters",
           "peak_mem_mb", "threads", "load_avg", "torch", "note"]
COMPONENTS = {
    "keyframe": ("benchmarks._cases:keyframe_throughput_case", "frames/s"),
    "propagator_step": ("benchmarks._cases:step_throughput_case", "frames/s"),
    "pipeline": ("benchmarks._cases:pipeline_throughput_case", "frames/s"),
    "pipeline_batched": ("benchmarks._cases:pipeline_lockstep_throughput_case", "frames/s"),
    "train_keyframe": ("benchmarks._cases:keyframe_train_case", "frames/s"),
    "train_propagator": ("benchmarks._cases:propagator_train_case", "clips/s"),
}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="tiny,paper", help="model configs, comma-separated")
    ap.add_argument("--components", default=",".join(COMPONENTS), help="comma-separated subset of "
                    + ", ".join(COMPONENTS))
    ap.add_argument("--dtypes", default="fp32,bf16", help="fp32 and/or bf16 (bf16 is skipped on CPU)")
    ap.add_argument("--batches", default="1,4", help="batch sizes (videos in lockstep), comma-separated")
    ap.add_argument("--size", type=int, default=0, help="input size; 0 = the config's own (tiny 128, paper 224)")
    ap.add_argument("--clip-len", type=int, default=20, help="pipeline: frames per streamed clip")
    ap.add_argument("--segment-len", type=int, default=10, help="pipeline: a control point every N frames")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="time each case for at least this long")
    ap.add_argument("--profile", default="missed", choices=["missed", "all", "none"],
                    help="profile the components behind missed targets (or all target components) and write "
                         "<stem>_profile.md: ms per submodule and the top operators")
    H.common_args(ap)
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    device = H.resolve_device(args.device)
    cap = H.default_cap(device, args.mem_cap_mb)
    dev_name = H.device_name(device)
    rows = []
    for config in args.configs.split(","):
        for comp in args.components.split(","):
            if comp not in COMPONENTS:
                raise SystemExit(f"unknown component {comp!r}; choose from {sorted(COMPONENTS)}")
            target, unit = COMPONENTS[comp]
            for dtype in args.dtypes.split(","):
                for batch in (int(b) for b in args.batches.split(",")):
                    base = {"device": dev_name, "config": config, "component": comp, "dtype": dtype,
                            "batch": batch, "unit": unit, "torch": torch.__version__}
                    if dtype == "bf16" and not device.startswith("cuda"):
                        row = {**base, "status": H.SKIPPED, "note": "bf16 autocast is measured on GPU only",
                               "load_avg": H.load_average()}
                    else:
                        kwargs = {"config": config, "batch": batch, "dtype": dtype, "seed": args.seed,
                                  "size": args.size or None, "min_seconds": args.min_seconds}
                        if comp.startswith("pipeline"):
                            kwargs.update(clip_len=args.clip_len, segment_len=args.segment_len)
                        load = H.load_average()
                        res = H.run_case(target, kwargs, device=device, mem_cap_mb=cap,
                                             timeout_s=args.timeout, threads=args.threads,
                                             isolate=not args.no_isolate)
                        row = {**base, **res, "load_avg": load}
                        if comp.startswith("pipeline") and row["status"] == H.OK:
                            row["note"] = (f"{args.clip_len}-frame clips, control point every "
                                           f"{args.segment_len} frames")
                    rows.append(row)
                    print(f"[throughput] {config:6s} {comp:17s} {dtype} B={batch} {row['status']:7s} "
                          f"{row.get('fps', float('nan')):8.2f} {unit}  {row.get('note', '')}", flush=True)
    return rows


def _best(rows, config, component, batch=1):
    """Highest fps over dtypes for one (config, component, batch) -> (fps, dtype) or (None, None)."""
    ok = [r for r in rows if r["config"] == config and r["component"] == component and r["batch"] == batch
          and r["status"] == H.OK]
    if not ok:
        return None, None
    r = max(ok, key=lambda r: r["fps"])
    return r["fps"], r["dtype"]


def targets(rows: list[dict], device: str, label: str = "") -> list[dict]:
    out = []
    on_gpu = device.startswith("cuda")
    gpu = (label or H.device_name(device)) if on_gpu else ""
    configs = {r["config"] for r in rows}
    for component, threshold, label in (("propagator_step", 150.0, "propagation"),
                                        ("pipeline", 100.0, "whole pipeline")) if "paper" in configs else ():
        name = f"paper, one H100, 224 px: {label} >= {threshold:.0f} frames/s (B=1)"
        fps, dtype = _best(rows, "paper", component)
        if not on_gpu:
            out.append(H.target_row(name, None, threshold, note="needs a GPU; this run is CPU-only"))
        elif fps is None:
            out.append(H.target_row(name, None, threshold, note="paper case did not run"))
        else:
            note = dtype + ("" if "H100" in gpu else f"; measured on {gpu}, not an H100")
            out.append(H.target_row(name, fps, threshold, unit=" fps", note=note))
    for component, label in (("pipeline", "whole pipeline"), ("propagator_step", "propagation")) \
            if "tiny" in configs else ():
        name = f"tiny on the 2-core CPU: {label} >= 10 frames/s (B=1, fp32)"
        fps = next((r["fps"] for r in rows if r["config"] == "tiny" and r["component"] == component
                    and r["batch"] == 1 and r["dtype"] == "fp32" and r["status"] == H.OK), None)
        if on_gpu:
            out.append(H.target_row(name, None, 10.0, note="CPU target; this run is on a GPU"))
        else:
            out.append(H.target_row(name, fps, 10.0, unit=" fps"))
    return out


def profile_targets(args, device: str, tgt: list[dict], stem: Path) -> Path | None:
    """Profile (in a fresh process each) the (config, component) pairs behind the targets; returns the report."""
    wanted = []
    for row in tgt:
        if args.profile == "none" or (args.profile == "missed" and row["met"] != "no"):
            continue
        config = "paper" if row["target"].startswith("paper") else "tiny"
        component = "pipeline" if "pipeline" in row["target"] else "propagator_step"
        if config in args.configs.split(",") and (config, component) not in wanted:
            wanted.append((config, component))
    if not wanted:
        return None
    parts = [f"# Where the time goes ({H.device_name(device)}, B=1, fp32, random weights)",
             "*Inclusive ms per frame of each top-level submodule (device synchronised at module boundaries, "
             "which itself costs a little on GPU); '(outside modules)' is the glue between them: input "
             "preparation, identity gather/scatter, resizing, copies to the CPU. Then torch.profiler's "
             "top operators over the same work.*"]
    for config, component in wanted:
        kwargs = {"component": component, "config": config, "size": args.size or None, "seed": args.seed,
                  "frames": max(args.clip_len, 10), "segment_len": args.segment_len}
        load = H.load_average()
        res = H.run_case("benchmarks._cases:profile_case", kwargs, device=device, timeout_s=args.timeout,
                         threads=args.threads, isolate=not args.no_isolate)
        parts.append(f"## {config} {component}: {res.get('ms_per_frame', float('nan')):.1f} ms/frame "
                     f"(load average {load}, {res.get('threads', '?')} threads)")
        if res["status"] != H.OK:
            parts.append(f"profiling failed: {res['status']} {res.get('note', '')}")
            continue
        mods = [{"module": k, "ms_per_frame": round(v, 2), "share": f"{v / res['ms_per_frame']:.0%}"}
                for k, v in res["modules_ms_per_frame"]]
        parts.append(H.markdown_table(mods, ["module", "ms_per_frame", "share"]))
        parts.append("```\n" + res["ops_table"] + "\n```")
        print(f"\n[profile] {config} {component}: {res['ms_per_frame']:.1f} ms/frame")
        H.print_table(mods, ["module", "ms_per_frame", "share"])
    from coprop.io import write_text

    path = Path(f"{stem}_profile.md")
    write_text(path, "\n\n".join(parts) + "\n")
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    device, label, stem, rows = H.output_target(args, "throughput")
    if rows is None:
        print(f"[throughput] device: {label}; load average {H.load_average()}", flush=True)
        rows = run(args)
    tgt = targets(rows, device, label)
    notes = [H.RANDOM_WEIGHTS_NOTE, f"Device: {label}.",
             "Each case ran " + ("in this process (smoke run)." if args.no_isolate else "in a fresh process."),
             "fps counts frames of all B videos (train_propagator: clips of 5 frames). peak_mem_mb: "
             + ("CUDA peak allocated." if device.startswith("cuda") else "process peak RSS.")]
    H.write_table(rows, COLUMNS, stem, title="Throughput", notes=notes,
                  extra_sections=[("Targets", H.markdown_table(tgt, H.TARGET_COLUMNS))])
    H.write_table(tgt, H.TARGET_COLUMNS, Path(f"{stem}_targets"), title="Throughput targets")
    H.print_table(rows, ["config", "component", "dtype", "batch", "size", "fps", "unit", "status", "note"],
                  "Throughput")
    H.print_table(tgt, H.TARGET_COLUMNS, "Targets")
    prof = None if args.from_csv else profile_targets(args, device, tgt, stem)
    print(f"\nwrote {stem}.csv, {stem}.md" + (f", {prof}" if prof else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
