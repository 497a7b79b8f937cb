# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 — Performance: memory vs clip length, and throughput
#
# The paper's claim: decoding all frames of a clip at once (the simultaneous baseline) needs memory that
# grows with the clip, while Co-Prop's frame-by-frame propagation with a bounded memory bank does not.
# This notebook plots what `benchmarks/memory_vs_length.py` and `benchmarks/throughput.py` measured.
#
# * Give `memory_csv` / `throughput_csv` to plot committed results (e.g. `reports/performance/*.csv`).
# * Left empty, the notebook runs both benchmarks itself at the tiny size set below (smoke mode); each case
#   runs all its cases in one process (`--no-isolate`), so the numbers are real but tiny and noisy; the committed
#   tables come from the scripts run from the command line, one fresh process per case.
#
# `coprop demo` (configs/demo.yaml) plots the committed tables `reports/performance/memory_vs_length_cpu-2c.csv`
# and `throughput_cpu-2c.csv` instead of measuring for minutes: they were measured on the 2-core CPU with the
# scripts above, one process per case (the cell below prints the commit and date of each file, the tables keep
# the load average and torch version of every case). Run the scripts, or empty both CSV parameters, to measure.
#
# Models carry random weights: speed and memory do not depend on weight values; nothing here measures accuracy.

# %%
import matplotlib

matplotlib.use("Agg")

from pathlib import Path

from coprop import perf
from coprop.paths import display_path
from coprop.reports import RunOutput

# %% tags=["parameters"]
data_root: str = ""                      # unused here (benchmarks feed random frames); kept for the runner
synthetic_preset: str = "smoke"          # unused here; kept for the runner
output_dir: str = "reports/_scratch/07_performance"  # where tables, figures and metrics.json go
seed: int = 0                            # random seed of the benchmark inputs and weights
memory_csv: str = ""                     # memory_vs_length CSV(s) to plot, comma-separated; empty: run it below
throughput_csv: str = ""                 # throughput CSV(s) to plot, comma-separated; empty: run it below
bench_device: str = "cpu"                # device of a benchmark run from here: cpu, cuda, auto
bench_config: str = "tiny"               # model config(s) of a benchmark run from here, comma-separated
bench_lengths: str = "2,4"               # clip lengths T of the memory benchmark run from here
bench_size: int = 64                     # input size (px) of the benchmark run from here
bench_components: str = "keyframe,propagator_step,pipeline"  # throughput components run from here
bench_min_seconds: float = 0.2           # time each throughput case at least this long

# %%
out = RunOutput(output_dir, synthetic=True)
bench_dir = out.dir / "benchmark"  # absolute (repo root): the benchmark subprocess runs there
if memory_csv:
    memory_path = memory_csv
else:
    memory_path = perf.run_benchmark(
        "memory_vs_length", ["--config", bench_config, "--lengths", bench_lengths, "--size", bench_size,
                             "--device", bench_device, "--seed", seed, "--no-isolate"], bench_dir)
if throughput_csv:
    throughput_path = throughput_csv
else:
    throughput_path = perf.run_benchmark(
        "throughput", ["--configs", bench_config, "--components", bench_components, "--batches", "1",
                       "--dtypes", "fp32", "--size", bench_size, "--clip-len", 4, "--segment-len", 2,
                       "--min-seconds", bench_min_seconds, "--device", bench_device, "--seed", seed,
                       "--no-isolate"], bench_dir)
memory = perf.load_results(memory_path, "memory_vs_length")
throughput = perf.load_results(throughput_path, "throughput")
print(f"memory results: {display_path(memory_path)}\nthroughput results: {display_path(throughput_path)}")
print(perf.provenance(memory_path) + "\n" + perf.provenance(throughput_path))

# %% [markdown]
# ## Memory vs clip length
# Log-log. Crosses mark cases that ran out of memory or were predicted to pass the memory cap (drawn at the cap).

# %%
out.figure(perf.plot_memory_vs_length(memory), "memory_vs_length")
out.table(memory, "memory_vs_length", caption=f"Peak memory (MB) and ms per frame vs clip length T, from "
          f"{display_path(memory_path)} (the CSV beside this table has every column).",
          columns=["config", "method", "T", "size", "peak_mem_mb", "ms_per_frame", "status"])

# %%
memory_targets = perf.load_targets(memory_path)
out.table(memory_targets, "memory_targets", caption="Memory targets.")

# %% [markdown]
# ## Throughput

# %%
out.figure(perf.plot_throughput(throughput), "throughput")
out.table(throughput, "throughput", caption=f"Throughput, from {display_path(throughput_path)} (the CSV beside "
          "this table has every column).", columns=["config", "component", "dtype", "batch", "fps", "unit", "status"])

# %%
throughput_targets = perf.load_targets(throughput_path)
out.metrics(memory_csv=display_path(memory_path), throughput_csv=display_path(throughput_path),
            memory_cases_ok=int((memory["status"] == "ok").sum()),
            throughput_cases_ok=int((throughput["status"] == "ok").sum()),
            device=str(memory["device"].iloc[0]))
out.table(throughput_targets, "throughput_targets", caption="Throughput targets.")
