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
# # 04 · Train the Audio-Insert Propagator and the simultaneous baseline
#
# Stage 2 of Co-Prop (paper §3.4, §4.2). The propagator learns to carry a keyframe mask through the frames
# that follow it, with the audio of every frame inserted by cross-attention:
#
# * a training sample is a **GT keyframe mask** at an annotated frame and the frames after it
#   (`coprop.train.train_propagator`); the model propagates frame by frame (`forward_train`, memory of
#   its own soft predictions) and the loss is taken on the following **annotated frames of the same
#   segment** (up to the next GT control point), exactly the frames the pipeline propagates to;
# * validation propagates each GT segment of the val clips from its GT keyframe and scores the
#   propagated frames only (J, F, Alignment Rate).
#
# The **simultaneous baseline** (the "existing method" of the paper's comparisons) decodes all frames of a
# clip at once; it is trained on whole clips with the same loss (`coprop.train.train_baseline`).
#
# Both go into the same run folder as notebook 03 (the default run folder is shared), so `load_run(run_dir)` returns
# the keyframe model, the propagator and the baseline together.

# %%
import matplotlib

matplotlib.use("Agg")  # headless-safe; figures are also saved as PNG

from coprop.data.synth import is_synthetic, resolve_root
from coprop.paths import display_path
from coprop.reports import RunOutput
from coprop.train import default_run_dir, load_run, train_all
from coprop.train.report import history_frame, history_table, plot_history, summarise

# %% tags=["parameters"]
data_root: str = ""            # AVSBench root; empty: the built-in synthetic benchmark
synthetic_preset: str = "smoke"  # synthetic preset generated on demand when data_root is empty
output_dir: str = "reports/_scratch/04_train_propagator"  # where tables, figures and metrics.json go
seed: int = 0                  # random seed
subset: str = "ms3"            # ms3 | avss (S4's train split annotates frame 0 only: nothing to propagate to)
config_name: str = "tiny"      # model config: tiny (CPU, random init) | paper (GPU, local weight files)
preset: str = "smoke"          # training hyper-parameters: smoke | demo | paper (coprop.train.PRESETS)
epochs: int = 0                # propagator epochs; 0: from the preset
baseline_epochs: int = 0       # baseline epochs; 0: from the preset
train_baseline: bool = True    # also train the simultaneous baseline
max_steps_per_epoch: int = 0   # cap on optimizer steps per epoch; 0: from the preset
window: int = 0                # frames per propagation sample; 0: the shortest clip
run_dir: str = ""              # run folder; empty: runs/<subset>-<config>-<preset>-s<seed> (shared with 03)
val_limit: int = 0             # validate on the first N val clips only; 0: all
train_limit: int = 0           # train on the first N training clips only; 0: all
device: str = "auto"           # auto | cpu | cuda
num_threads: int = 1           # CPU threads for training (1 is fastest on a shared, busy CPU); 0: torch default
resume: bool = True            # continue from the run folder's checkpoints

# %%
root = resolve_root(data_root or None, synthetic_preset, seed)
out = RunOutput(output_dir, synthetic=is_synthetic(root))
run_path = run_dir or str(default_run_dir(subset, config_name, preset, seed))
stages = ["propagator", "baseline"] if train_baseline else ["propagator"]
print(f"data: {display_path(root)} ({subset}), run folder: {display_path(run_path)}, stages: {stages}")

# %% [markdown]
# ## Train

# %%
#papermill_description=TrainPropagator
common = {"device": device, "resume": resume, "num_threads": num_threads or None}
if max_steps_per_epoch:
    common["max_steps_per_epoch"] = max_steps_per_epoch
per_stage = {"propagator": {"epochs": epochs} if epochs else {},
             "baseline": {"epochs": baseline_epochs} if baseline_epochs else {}}
results = train_all(root, subset, run_path, preset=preset, config=config_name, seed=seed, stages=stages,
                    val_limit=val_limit or None, train_limit=train_limit or None, stage_overrides=per_stage, window=window or None, **common)

# %% [markdown]
# ## Loss and validation J / F per epoch
#
# The propagator's validation starts every segment from its GT keyframe, so it measures propagation alone;
# the baseline's is the whole clip decoded at once.

# %%
history = history_frame(run_path, stages)
out.figure(plot_history(history, title=f"Propagator and simultaneous baseline on {subset}"), "training_curves")
out.table(history_table(history), "train_history",
          caption="Propagator and baseline per epoch: training loss, validation J, F and alignment in %; every column "
                  "(learning rate, throughput) is in the run folder's metrics.csv.")

# %%
summary = summarise(results)
out.metrics(**summary, run_dir=str(run_path), subset=subset, config=config_name, preset=preset, seed=seed)
run = load_run(run_path)
print(f"run folder holds: {run.stages}")
summary
