"""Peak memory and time per frame versus clip length: simultaneous baseline vs Co-Prop streaming.

    python benchmarks/memory_vs_length.py                       # tiny config, CPU/GPU auto, T = 10..1000, 224 px
    python benchmarks/memory_vs_length.py --config paper --device cuda --dtype bf16

(a) ``baseline``: the simultaneous baseline decodes all T frames in one forward pass (all frames resident).
(b) ``coprop``: Co-Prop streaming -- the keyframe model on control points (one every ``--segment-len`` frames)
    and one propagator step per other frame; the bounded memory bank keeps the state constant.

Each (method, T) runs in a fresh process. On CPU the peak is the resident-set high-water mark under a memory
cap (default 6 GiB), and cases whose predicted peak (a line through the smaller T already measured) is over
the cap are not started: they are recorded as ``over-cap``. On GPU the peak is CUDA peak allocated; a CUDA OOM
is recorded as ``OOM``. Writes ``memory_vs_length_<device>[_tag].csv/.md`` into ``--out-dir``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as H  # noqa: E402

COLUMNS = ["device", "config", "method", "T", "size", "peak_mem_mb", "model_mem_mb", "ms_per_frame", "status",
           "work_mem_mb", "base_mb", "import_mb", "dtype", "segment_len", "mem_cap_mb", "threads", "load_avg", "torch", "note"]
METHODS = {"baseline": "benchmarks._cases:baseline_memory_case", "coprop": "benchmarks._cases:coprop_memory_case"}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny", help="model config(s), comma-separated: tiny, paper")
    ap.add_argument("--lengths", default="10,50,100,300,1000", help="clip lengths T, comma-separated")
    ap.add_argument("--size", type=int, default=224, help="square input size in pixels")
    ap.add_argument("--methods", default="baseline,coprop", help="comma-separated subset of baseline,coprop")
    ap.add_argument("--segment-len", type=int, default=10, help="Co-Prop: a control point every N frames")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16 = autocast (GPU)")
    ap.add_argument("--no-share-vggish", action="store_true",
                    help="Co-Prop: give the propagator its own VGGish (the layout before one VGGish per pipeline)")
    H.common_args(ap)
    return ap.parse_args(argv)


def _predicted_over(done: list[dict], T: int, cap: float | None, timeout: float) -> tuple[str, str] | None:
    """(status, why) when a case should not start, judged from the same method's smaller T; None = run it."""
    failed = [r for r in done if r["status"] in (H.OOM, H.OVER_CAP, H.TIMEOUT, H.SKIPPED) and r["T"] < T]
    if failed:
        status = H.OVER_CAP if failed[0]["status"] in (H.OOM, H.OVER_CAP) else H.SKIPPED
        return status, f"T={failed[0]['T']} was already {failed[0]['status']}"
    ok = [r for r in done if r["status"] == H.OK]
    if cap and ok:
        if len(ok) == 1:  # one point: only the part above the resident base scales with T
            r = ok[0]
            mem = r["base_mb"] + (r["peak_mem_mb"] - r["base_mb"]) * T / r["T"]
        else:
            mem = H.predict_linear([(r["T"], r["peak_mem_mb"]) for r in ok], T)
        if mem > 0.95 * cap:
            return H.OVER_CAP, f"predicted {mem:.0f} MB > cap {cap:.0f} MB"
    secs = H.predict_linear([(r["T"], r["seconds"]) for r in ok if "seconds" in r], T)
    if secs is not None and secs > 0.8 * timeout:
        return H.SKIPPED, f"predicted {secs:.0f} s > timeout {timeout:.0f} s"
    return None


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    device = H.resolve_device(args.device)
    cap = H.default_cap(device, args.mem_cap_mb)
    lengths = sorted(int(x) for x in args.lengths.split(","))
    rows: list[dict] = []
    dev_name = H.device_name(device)
    for config in args.config.split(","):
        for method in args.methods.split(","):
            if method not in METHODS:
                raise SystemExit(f"unknown method {method!r}; choose from {sorted(METHODS)}")
            done: list[dict] = []
            for T in lengths:
                base = {"device": dev_name, "config": config, "method": method, "T": T, "size": args.size,
                        "dtype": args.dtype, "segment_len": args.segment_len if method == "coprop" else "",
                        "mem_cap_mb": cap or "", "torch": torch.__version__}
                skip = _predicted_over(done, T, cap, args.timeout)
                if skip:
                    row = {**base, "status": skip[0], "note": skip[1], "load_avg": H.load_average()}
                else:
                    kwargs = {"config": config, "T": T, "size": args.size, "dtype": args.dtype, "seed": args.seed}
                    if method == "coprop":
                        kwargs["segment_len"] = args.segment_len
                        if args.no_share_vggish:
                            kwargs["share_vggish"] = False
                            base["note"] = "propagator holds its own VGGish"
                    load = H.load_average()
                    res = H.run_case(METHODS[method], kwargs, device=device, mem_cap_mb=cap,
                                         timeout_s=args.timeout, threads=args.threads,
                                         isolate=not args.no_isolate)
                    row = {**base, **res, "load_avg": load}
                    if base.get("note") and res.get("note"):
                        row["note"] = f"{base['note']}; {res['note']}"
                    if row["status"] == H.OK:
                        row["work_mem_mb"] = round(row["peak_mem_mb"] - row["base_mb"], 1)
                    else:
                        row.pop("peak_mem_mb", None) if row["status"] != H.OOM else None
                done.append(row)
                rows.append(row)
                print(f"[memory] {config:6s} {method:8s} T={T:<5d} {row['status']:8s} "
                      f"peak={row.get('peak_mem_mb', '')} MB  ms/frame={_r(row.get('ms_per_frame'))}  "
                      f"{row.get('note', '')}", flush=True)
    return rows


def _r(x):
    return "" if x is None else f"{x:.1f}"


def targets(rows: list[dict], cap: float | None) -> list[dict]:
    out = []
    by = {(r["config"], r["method"], r["T"]): r for r in rows}
    for config in dict.fromkeys(r["config"] for r in rows):
        c10, c1000 = by.get((config, "coprop", 10)), by.get((config, "coprop", 1000))
        if c10 and c1000 and c10["status"] == c1000["status"] == H.OK:
            growth = c1000["peak_mem_mb"] / c10["peak_mem_mb"] - 1.0
            out.append({"target": f"{config}: Co-Prop peak memory T=1000 within 10% of T=10",
                        "measured": f"{growth:+.1%} ({c10['peak_mem_mb']:.0f} -> {c1000['peak_mem_mb']:.0f} MB)",
                        "met": "yes" if growth <= 0.10 else "no",
                        "margin": f"{(0.10 - growth) * 100:+.1f} pp"})
        else:
            longest = max((r for r in rows if r["config"] == config and r["method"] == "coprop"
                           and r["status"] == H.OK and r["T"] > 10), key=lambda r: r["T"], default=None)
            note = "T=10 or T=1000 not measured"
            if c10 and c10["status"] == H.OK and longest:
                note += (f"; longest measured T={longest['T']}: "
                         f"{longest['peak_mem_mb'] / c10['peak_mem_mb'] - 1:+.1%} vs T=10")
            out.append(H.target_row(f"{config}: Co-Prop peak memory T=1000 within 10% of T=10", None, 0.1,
                                    note=note))
        b100, c100 = by.get((config, "baseline", 100)), by.get((config, "coprop", 100))
        name = f"{config}: baseline peak >= 5x Co-Prop at T=100"
        if b100 and c100 and c100["status"] == H.OK and b100["status"] == H.OK:
            ratio = b100["peak_mem_mb"] / c100["peak_mem_mb"]
            work = (b100["work_mem_mb"] / c100["work_mem_mb"]) if c100.get("work_mem_mb") else float("nan")
            model = (b100["model_mem_mb"] / c100["model_mem_mb"]) if c100.get("model_mem_mb") else float("nan")
            out.append(H.target_row(name, ratio, 5.0, unit="x",
                                    note=f"above the resident base: {work:.0f}x; model_mem_mb: {model:.1f}x"))
        elif b100 and c100 and c100["status"] == H.OK and b100["status"] in (H.OOM, H.OVER_CAP) and cap:
            ratio = cap / c100["peak_mem_mb"]
            out.append({"target": name, "measured": f">= {ratio:.3g}x (baseline {b100['status']} at the "
                        f"{cap:.0f} MB cap)", "met": "yes" if ratio >= 5 else "unknown",
                        "margin": f">= {ratio / 5 - 1:+.0%}"})
        else:
            out.append(H.target_row(name, None, 5.0, note="T=100 not measured for both methods"))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    device, label, stem, rows = H.output_target(args, "memory_vs_length")
    cap = H.default_cap(device, args.mem_cap_mb)
    if rows is None:
        print(f"[memory] device: {label}; load average {H.load_average()}; cap {cap or 'none'} MB", flush=True)
        rows = run(args)
    else:
        cap = next((r["mem_cap_mb"] for r in rows if r.get("mem_cap_mb")), None)
    tgt = targets(rows, cap)
    notes = [H.RANDOM_WEIGHTS_NOTE,
             f"Device: {label}. Peak = "
             + ("CUDA peak allocated (weights included)." if device.startswith("cuda") else
                "process peak RSS (VmHWM, interpreter + torch + weights included); work_mem_mb = peak minus the "
                "RSS before the measured run."),
             "model_mem_mb = peak minus import_mb, the process's footprint after importing torch, timm and coprop's "
             "model and pipeline modules (before any model is built): the models' weights and activations, "
             "not the interpreter and its libraries.",
             "Each case ran " + ("in this process (smoke run: no cap, peaks include earlier cases' leftovers)."
                                 if args.no_isolate else "in a fresh process."),
             "Statuses: ok; OOM = allocation failed or killed at the cap; over-cap = not started because the "
             "line through the smaller T predicts a peak over the cap; skipped = predicted over the timeout."]
    H.write_table(rows, COLUMNS, stem, title="Peak memory and time per frame vs clip length", notes=notes,
                  extra_sections=[("Targets", H.markdown_table(tgt, H.TARGET_COLUMNS))])
    H.write_table(tgt, H.TARGET_COLUMNS, Path(f"{stem}_targets"), title="Memory targets")
    H.print_table(rows, ["config", "method", "T", "size", "peak_mem_mb", "model_mem_mb", "ms_per_frame", "status",
                         "note"],
                  "Memory vs length")
    H.print_table(tgt, H.TARGET_COLUMNS, "Targets")
    print(f"\nwrote {stem}.csv, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
