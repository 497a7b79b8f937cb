"""``coprop demo``: the README's main job, on a CPU, in one command.

1. builds the synthetic demo benchmark (``coprop.data.synth.ensure('demo')``, reused when present);
2. trains every model the notebooks need, once per training seed of 05_ablations in the config, into
   ``runs/demo/seed<N>/`` (keyframe + fine-tune, baseline,
   propagators with 0 / 1 / 4 audio-insert levels, the text-guided keyframe model) -- finished models are reused,
   an interrupted stage resumes from its checkpoint;
3. runs every notebook with ``configs/demo.yaml`` (pointing them at ``runs/demo``) into ``reports/``;
4. prints where the reports went and the headline table, and writes ``reports/demo_summary.json`` (wall time
   of each phase).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from coprop import paths
from coprop.cli_args import ArgumentParser, nonneg_int

RUN_DIR = "runs/demo"
CONFIG = "configs/demo.yaml"
HEADLINE = ("05_ablations", "table1")


def headline_table(reports: Path, run: str = "demo") -> str:
    """The demo's Table 1 as Markdown (what the README shows), or a note when it is missing."""
    md = reports / HEADLINE[0] / run / f"{HEADLINE[1]}.md"
    return md.read_text() if md.exists() else f"(no headline table: {md} was not written)"


def compact_headline(reports: Path, run: str = "demo") -> str:
    """A short version of Table 1 for the terminal: method, our J and F, the paper's J and F."""
    import pandas as pd

    csv = reports / HEADLINE[0] / run / f"{HEADLINE[1]}.csv"
    if not csv.exists():
        return f"(no headline table: {csv} was not written)"
    df = pd.read_csv(csv)
    keep = ["method"] + [c for c in df.columns if c.startswith(("ours: J", "ours: F", "paper: "))]
    lines = [" | ".join(keep), " | ".join("---" for _ in keep)]
    for row in df[keep].itertuples(index=False):
        lines.append(" | ".join("" if (isinstance(v, float) and v != v) else
                                (f"{v:.1f}" if isinstance(v, float) else str(v)) for v in row))
    note = df["our data"].iloc[0] if "our data" in df.columns else ""
    return "\n".join(lines) + f"\n(ours: {note}; paper: AVSBench, PVT-v2 -- not the same data)"


def _training_seeds(config: Path) -> list[int]:
    """The training seeds 05_ablations will ask for, so every model is trained here, before the notebooks."""
    import yaml

    from coprop import experiments as E

    section = (yaml.safe_load(Path(config).read_text()) or {}).get("05_ablations") or {}
    return E.parse_seeds(section.get("seeds", "0"))


def run_demo(run_dir: str = RUN_DIR, config: str = CONFIG, only: list[str] | None = None,
             reports: str | Path | None = None, device: str = "auto", threads: int = 1, echo=print) -> dict:
    from coprop import experiments as E
    from coprop.data.synth import ensure
    from coprop.runner import run_notebooks

    t0 = time.perf_counter()
    E.set_threads(threads)
    phases: dict[str, float] = {}
    echo("[1/3] synthetic demo benchmark ...")
    t = time.perf_counter()
    root = ensure("demo", 0)
    phases["data_s"] = time.perf_counter() - t
    echo(f"      {root} ({phases['data_s']:.0f} s)")
    echo(f"[2/3] models -> {run_dir} (finished models are reused) ...")
    t = time.perf_counter()
    for seed in _training_seeds(E.resolve_path(config)):
        E.ensure_suite(run_dir, E.Data("", "demo", "ms3", 0), seed=seed, suite="demo", model_config="tiny",
                       device=device, echo=lambda m: echo("      " + m.strip()))
    phases["train_s"] = time.perf_counter() - t
    echo(f"      models ready ({phases['train_s']:.0f} s)")
    echo(f"[3/3] notebooks with {config} ...")
    t = time.perf_counter()
    reports = Path(reports) if reports else paths.reports_dir()
    results = run_notebooks(E.resolve_path(config), only=only, run="demo", reports=reports,
                            echo=lambda m: echo("      " + m))
    phases["notebooks_s"] = time.perf_counter() - t
    phases["total_s"] = time.perf_counter() - t0
    summary = {"wall_s": phases, "notebooks": {r.notebook: {"status": r.status, "seconds": round(r.duration_s, 1),
                                                            "error": r.error} for r in results},
               "run_dir": str(E.resolve_path(run_dir)), "reports": str(reports), "data": str(root),
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    from coprop.io import write_json

    write_json(reports / "demo_summary.json", summary)
    return summary


def cli(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="coprop demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", default=RUN_DIR, help="where the models go (default runs/demo)")
    ap.add_argument("--config", default=CONFIG, help="notebook parameter file (default configs/demo.yaml)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (stem or prefix)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--threads", type=nonneg_int, default=1,
                    help="CPU threads for training (1 is fastest on a shared, busy CPU, 0: torch default)")
    args = ap.parse_args(argv)
    s = run_demo(args.run_dir, args.config, args.only, device=args.device, threads=args.threads)
    reports = Path(s["reports"])
    failed = {k: v for k, v in s["notebooks"].items() if v["status"] != "ok"}
    print()
    print(f"coprop demo finished in {s['wall_s']['total_s'] / 60:.1f} min "
          f"(data {s['wall_s']['data_s']:.0f} s, training {s['wall_s']['train_s']:.0f} s, "
          f"notebooks {s['wall_s']['notebooks_s']:.0f} s)")
    print(f"reports: {reports}/<notebook>/demo.ipynb and {reports}/<notebook>/demo/ ; index {reports / 'index.csv'}")
    print("\nheadline (paper Table 1 layout, synthetic data):\n" + compact_headline(reports))
    for name, v in failed.items():
        print(f"FAILED {name}: {v['error']}")
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    sys.exit(cli())
