"""Benchmark results for notebooks: run the benchmark scripts, load their CSVs, plot them.

The measurements themselves live in ``benchmarks/`` (each case in its own process); this module only
starts those scripts and reads what they wrote, so a notebook never holds measurement code.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence

from coprop.errors import CopropError, DataError
from coprop.paths import repo_root

BENCHMARKS = ("memory_vs_length", "throughput")
MEMORY_COLUMNS = ("device", "config", "method", "T", "size", "peak_mem_mb", "ms_per_frame", "status")
THROUGHPUT_COLUMNS = ("device", "config", "component", "dtype", "batch", "fps", "unit", "status")


def script_path(name: str) -> Path:
    if name not in BENCHMARKS:
        raise CopropError(f"unknown benchmark {name!r}; choose one of {list(BENCHMARKS)}")
    path = repo_root() / "benchmarks" / f"{name}.py"
    if not path.is_file():
        raise DataError(path, "benchmark script not found",
                        "run from a coprop checkout (the benchmarks/ folder is not part of the installed package)")
    return path


def run_benchmark(name: str, args: Sequence[str], out_dir: str | Path, tag: str = "", timeout_s: float = 1800
                  ) -> Path:
    """Run ``benchmarks/<name>.py args --out-dir out_dir`` in a subprocess; returns the results CSV it wrote."""
    out_dir = Path(out_dir)
    cmd = [sys.executable, str(script_path(name)), *map(str, args), "--out-dir", str(out_dir)]
    if tag:
        cmd += ["--tag", tag]
    proc = subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise CopropError(f"benchmark {name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return find_csv(name, out_dir, tag)


def find_csv(name: str, folder: str | Path, tag: str = "") -> Path:
    """The newest ``<name>_<device>[_tag].csv`` in ``folder`` (targets tables excluded)."""
    folder = Path(folder)
    found = [p for p in folder.glob(f"{name}_*.csv")
             if not p.stem.endswith("_targets") and (not tag or p.stem.endswith(f"_{tag}"))]
    if not found:
        raise DataError(folder, f"no {name}_*.csv results here",
                        f"run python benchmarks/{name}.py --out-dir {folder}, or pass the CSV path")
    return max(found, key=lambda p: p.stat().st_mtime)


def _paths(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """One path, a list of paths, or several comma-separated in one string."""
    if isinstance(path, (str, Path)):
        return [Path(p.strip()) for p in str(path).split(",") if p.strip()]
    return [Path(p) for p in path]


def provenance(path: str | Path | Sequence[str | Path]) -> str:
    """Where result CSV(s) came from, one line each: the commit that last changed the file and its date (git), or
    the file's modification time when git does not track it."""
    import time

    lines = []
    for p in _paths(path):
        try:
            out = subprocess.run(["git", "log", "-1", "--format=%h %cs", "--", str(p.resolve())], cwd=repo_root(),
                                 capture_output=True, text=True, timeout=10).stdout.split()
        except (OSError, subprocess.SubprocessError):
            out = []
        if len(out) == 2:
            lines.append(f"{p.name}: committed in {out[0]} on {out[1]}")
        else:
            lines.append(f"{p.name}: not committed; written {time.strftime('%Y-%m-%d %H:%M', time.localtime(p.stat().st_mtime))}")
    return "\n".join(lines)


def load_results(path: str | Path | Sequence[str | Path], kind: str):
    """Read benchmark CSV(s) of one ``kind`` ('memory_vs_length'|'throughput') and check their columns;
    several files (e.g. one per config or device) are stacked."""
    import pandas as pd

    frames = []
    for p in _paths(path):
        if not p.is_file():
            raise DataError(p, "benchmark CSV not found", f"run benchmarks/{kind}.py or give an existing CSV")
        df = pd.read_csv(p)
        need = MEMORY_COLUMNS if kind == "memory_vs_length" else THROUGHPUT_COLUMNS
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(p, f"not a {kind} result: missing column(s) {missing}",
                            f"the file must come from benchmarks/{kind}.py")
        frames.append(df)
    if not frames:
        raise DataError(None, f"no {kind} CSV given", "pass at least one path")
    return pd.concat(frames, ignore_index=True)


def load_targets(results_csv: str | Path | Sequence[str | Path]):
    """The targets tables written beside results CSV(s) (``<stem>_targets.csv``), stacked."""
    import pandas as pd

    frames = []
    for p in _paths(results_csv):
        t = p.with_name(f"{p.stem}_targets.csv")
        if not t.is_file():
            raise DataError(t, "targets table not found", "it is written by the same benchmark run as the results")
        frames.append(pd.read_csv(t))
    return pd.concat(frames, ignore_index=True)


def plot_memory_vs_length(df):
    """Log-log peak memory vs T per config and method; OOM / over-cap cases marked at the cap (or the top)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    configs = list(dict.fromkeys(df["config"]))
    work = "work_mem_mb" in df.columns and df["work_mem_mb"].notna().any()
    fig, axes = plt.subplots(1, 3 if work else 2, figsize=(16 if work else 11, 4))
    styles = {"baseline": ("tab:red", "o"), "coprop": ("tab:blue", "s")}
    top = float(np.nanmax(df["peak_mem_mb"])) if df["peak_mem_mb"].notna().any() else 1.0
    for config in configs:
        for method, sub in df[df["config"] == config].groupby("method", sort=False):
            color, marker = styles.get(method, ("tab:gray", "^"))
            line = "-" if config == configs[0] else "--"
            ok = sub[sub["status"] == "ok"].sort_values("T")
            label = f"{config} {method}"
            axes[0].plot(ok["T"], ok["peak_mem_mb"], line, marker=marker, color=color, label=label)
            axes[1].plot(ok["T"], ok["ms_per_frame"], line, marker=marker, color=color, label=label)
            if work:
                axes[2].plot(ok["T"], ok["work_mem_mb"].clip(lower=0.1), line, marker=marker, color=color,
                             label=label)
            failed = sub[sub["status"].isin(["OOM", "over-cap"])]
            if len(failed):
                # no peak exists for these: draw them at the cap (GPU runs have none: above the highest point)
                cap = failed["mem_cap_mb"] if "mem_cap_mb" in failed else pd.Series(np.nan, index=failed.index)
                y = pd.to_numeric(cap, errors="coerce").fillna(top * 1.5)
                axes[0].scatter(failed["T"], y, marker="x", s=80, color=color, zorder=5,
                                label=f"{label}: OOM / over cap")
    axes[0].set(xscale="log", yscale="log", xlabel="clip length T (frames)", ylabel="peak memory (MB)",
                title="Peak memory vs length")
    axes[1].set(xscale="log", yscale="log", xlabel="clip length T (frames)", ylabel="ms per frame",
                title="Time per frame vs length")
    if work:
        axes[2].set(xscale="log", yscale="log", xlabel="clip length T (frames)",
                    ylabel="peak minus resident base (MB)", title="Memory the measured work added")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    device = df["device"].iloc[0] if len(df) else ""
    fig.suptitle(f"{device} (random weights)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_throughput(df):
    """Bars of frames/s per component, grouped by config, one bar per (dtype, batch); skipped cases absent."""
    import matplotlib.pyplot as plt
    import numpy as np

    ok = df[df["status"] == "ok"].copy()
    configs = list(dict.fromkeys(df["config"]))
    fig, axes = plt.subplots(1, max(len(configs), 1), figsize=(5.5 * max(len(configs), 1), 4), squeeze=False)
    for ax, config in zip(axes[0], configs):
        sub = ok[ok["config"] == config]
        comps = list(dict.fromkeys(sub["component"]))
        variants = list(dict.fromkeys(zip(sub["dtype"], sub["batch"])))
        width = 0.8 / max(len(variants), 1)
        for i, (dtype, batch) in enumerate(variants):
            vals = [sub[(sub["component"] == c) & (sub["dtype"] == dtype) & (sub["batch"] == batch)]["fps"]
                    for c in comps]
            heights = [float(v.iloc[0]) if len(v) else 0.0 for v in vals]
            ax.bar(np.arange(len(comps)) + i * width, heights, width, label=f"{dtype} B={batch}")
            # a case that ran out of memory (or failed) has no bar: say so where the bar would be
            failed = df[(df["config"] == config) & (df["dtype"] == dtype) & (df["batch"] == batch)
                        & ~df["status"].isin(["ok", "skipped"])]
            for _, r in failed.iterrows():
                if r["component"] in comps:
                    ax.annotate(str(r["status"]), (comps.index(r["component"]) + i * width, 0.02),
                                xycoords=("data", "axes fraction"), ha="center", fontsize=7, color="red",
                                rotation=90)
        ax.set_xticks(np.arange(len(comps)) + 0.4 - width / 2, comps, rotation=25, ha="right", fontsize=8)
        ax.set(yscale="log", ylabel="frames/s (train_propagator: clips/s)", title=config)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    device = df["device"].iloc[0] if len(df) else ""
    fig.suptitle(f"Throughput on {device} (random weights)", fontsize=9)
    fig.tight_layout()
    return fig
