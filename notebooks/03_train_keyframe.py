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
# # 03 · Train the Keyframe Processor
#
# Stage 1 of Co-Prop (paper §3.3 and §4.2). The Keyframe Processor segments a single frame guided by the
# audio of that frame. It is trained in two steps:
#
# 1. on **every annotated frame** of the training split (`coprop.train.train_keyframe`);
# 2. **fine-tuned on the keyframe subset**: the frames where the GT control points are 1, i.e. the
#    first frame of each sub-audio segment, which is all the pipeline ever asks this model to segment
#    (`coprop.train.finetune_keyframe`).
#
# Both steps write into one run folder: `config.json` (model config, training parameters, git revision),
# `keyframe.safetensors`, `keyframe_ft.safetensors`, `metrics.csv` (one row per epoch) and `checkpoints/`
# (full training state: an interrupted run resumes exactly where it stopped when this notebook is re-run).
# `coprop.train.load_run(run_dir)` gives the trained models back for inference.
#
# The defaults are smoke-sized (a handful of steps on the smoke synthetic set). For the demo set use
# `synthetic_preset="demo"`, `preset="demo"`; for AVSBench point `data_root` at it and use `config_name="paper"`
# on a GPU.

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
output_dir: str = "reports/_scratch/03_train_keyframe"  # where tables, figures and metrics.json go
seed: int = 0                  # random seed
subset: str = "ms3"            # s4 | ms3 | avss
config_name: str = "tiny"      # model config: tiny (CPU, random init) | paper (GPU, local weight files)
preset: str = "smoke"          # training hyper-parameters: smoke | demo | paper (coprop.train.PRESETS)
epochs: int = 0                # stage-1 epochs; 0: from the preset
finetune_epochs: int = 0       # fine-tuning epochs; 0: from the preset
max_steps_per_epoch: int = 0   # cap on optimizer steps per epoch; 0: from the preset
run_dir: str = ""              # run folder; empty: runs/<subset>-<config>-<preset>-s<seed> (shared with 04)
val_limit: int = 0             # validate on the first N val clips only; 0: all
train_limit: int = 0           # train on the first N training clips only; 0: all
device: str = "auto"           # auto | cpu | cuda
num_threads: int = 1           # CPU threads for training (1 is fastest on a shared, busy CPU); 0: torch default
resume: bool = True            # continue from the run folder's checkpoints

# %%
root = resolve_root(data_root or None, synthetic_preset, seed)
out = RunOutput(output_dir, synthetic=is_synthetic(root))
run_path = run_dir or str(default_run_dir(subset, config_name, preset, seed))
print(f"data: {display_path(root)} ({subset}), run folder: {display_path(run_path)}")

# %% [markdown]
# ## Train: all annotated frames, then the keyframe subset

# %%
#papermill_description=TrainKeyframe
common = {"device": device, "resume": resume, "num_threads": num_threads or None}
if max_steps_per_epoch:
    common["max_steps_per_epoch"] = max_steps_per_epoch
per_stage = {"keyframe": {"epochs": epochs} if epochs else {},
             "keyframe_ft": {"epochs": finetune_epochs} if finetune_epochs else {}}
results = train_all(root, subset, run_path, preset=preset, config=config_name, seed=seed,
                    stages=["keyframe", "keyframe_ft"], val_limit=val_limit or None, train_limit=train_limit or None,
                    stage_overrides=per_stage, **common)

# %% [markdown]
# ## Loss and validation J / F per epoch

# %%
history = history_frame(run_path, ["keyframe", "keyframe_ft"])
out.figure(plot_history(history, title=f"Keyframe Processor on {subset}"), "training_curves")
out.table(history_table(history), "train_history",
          caption="Keyframe Processor per epoch: training loss, validation J, F and alignment in %; every column "
                  "(learning rate, throughput) is in the run folder's metrics.csv.")

# %%
summary = summarise(results)
out.metrics(**summary, run_dir=str(run_path), subset=subset, config=config_name, preset=preset, seed=seed)
run = load_run(run_path)
print(f"run folder holds: {run.stages}; keyframe model for the pipeline: "
      f"{'fine-tuned' if 'keyframe_ft' in run.stages else 'stage 1'}")
summary
