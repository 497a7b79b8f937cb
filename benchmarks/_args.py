"""The command-line flags every benchmark shares, the default memory cap, and where a run's tables go."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks._host import REPO_ROOT, device_name, device_slug, resolve_device
from benchmarks._tables import read_rows


def output_target(args, prefix: str) -> tuple[str, str, Path, list[dict] | None]:
    """(device, device label, output stem, rows read back or None) for a run or a --from-csv re-render.

    Re-rendering keeps the CSV's own stem and device (a CPU label ends in 'cores)'; anything else is a GPU)."""
    if args.from_csv:
        rows = read_rows(args.from_csv)
        label = str(rows[0]["device"]) if rows else "unknown"
        device = "cpu" if label.endswith("cores)") else "cuda"
        return device, label, Path(args.from_csv).with_suffix(""), rows
    device = resolve_device(args.device)
    stem = Path(args.out_dir) / f"{prefix}_{device_slug(device)}{'_' + args.tag if args.tag else ''}"
    return device, device_name(device), stem, None


def common_args(ap: argparse.ArgumentParser, default_cap_mb: float = 6144.0) -> None:
    """Flags every benchmark shares."""
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (cuda when available)")
    ap.add_argument("--mem-cap-mb", type=float, default=None,
                    help=f"per-case memory cap; CPU default {default_cap_mb:.0f} MB (RSS), GPU default none "
                         "(a CUDA OOM is caught and recorded)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per case before it is killed")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in each case (0 = torch default)")
    ap.add_argument("--out-dir", default=str(REPO_ROOT / "reports" / "performance"),
                    help="where the CSV and Markdown tables go")
    ap.add_argument("--tag", default="", help="extra text in the output filenames")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-csv", default="",
                    help="measure nothing: re-render the tables and targets of a results CSV written earlier")
    ap.add_argument("--no-isolate", action="store_true",
                    help="run every case in this process (smoke runs: no memory cap, peaks less clean)")


def default_cap(device: str, cap: float | None, default_cpu_mb: float = 6144.0) -> float | None:
    if cap is not None:
        return cap or None
    return None if device.startswith("cuda") else default_cpu_mb
