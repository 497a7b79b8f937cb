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
# # 00 — Walkthrough: Co-Prop on one clip, step by step
#
# Co-Prop (Collaborative Hybrid Propagator) segments the object that makes the sound in a video in two stages:
#
# 1. **Audio boundary anchoring** — find the *control points*: the frames where the sounding object changes.
# 2. **Consistent-object propagation** — segment each control-point frame (a *keyframe*) with the Keyframe
#    Processor, then carry that mask through the following frames with the Audio-Insert Propagator, which
#    hears each frame's own audio.
#
# A model that decodes all frames at once (the *simultaneous baseline*) tends to keep segmenting the old
# source after a conversion, or to jump to the new one too early. This notebook follows one clip with a
# conversion through every stage. Data: the synthetic source-conversion benchmark unless `data_root` points at
# AVSBench; models: tiny CPU models trained here on first use (or by `coprop demo` into `runs/demo`).
#
# **Which clip, and why.** With `clip_index = -1` the clip is chosen by a rule
# (`coprop.experiments.choose_walkthrough_clip`): the first test clip whose sounding object is *replaced by a
# different object* (A → B, with frames left after the conversion) — exactly the moment a simultaneous model gets
# wrong. If no clip has one, the first clip whose sounding set changes (A → A+B), then the first with any change
# (e.g. silence → sound). The next cell prints the clip and the reason; set `clip_index` to follow another clip.

# %%
from coprop import experiments as E
from coprop import viz
from coprop.paths import display_path
from coprop.data.audio import clip_logmel
from coprop.reports import RunOutput
from coprop.widgets import Viewer

# %% tags=["parameters"]
data_root: str = ""  # AVSBench root (empty: the built-in synthetic benchmark)
synthetic_preset: str = "smoke"  # synthetic preset generated on demand when data_root is empty
output_dir: str = "reports/_scratch/00_walkthrough"  # where tables, figures and metrics.json go
seed: int = 0  # random seed (the synthetic data and the training seed)
subset: str = "ms3"  # s4 | ms3 | avss
clip_index: int = -1  # test clip to follow (-1: chosen by the rule above: a conversion between two objects)
run_dir: str = ""  # trained models, missing ones are trained here (empty: runs/<synthetic_preset>, e.g. runs/demo of coprop demo)
suite: str = ""  # training sizes for missing models: smoke | demo | paper (empty: the synthetic preset, paper for AVSBench)
model_config: str = "tiny"  # tiny (CPU, random init) | paper (GPU, local weight files)
device: str = "auto"  # auto | cpu | cuda
num_threads: int = 1  # CPU threads for torch (1 is fastest on a shared, busy CPU, 0: torch default)

# %%
E.set_threads(num_threads)
data = E.Data(data_root, synthetic_preset, subset, seed)
run_dir, suite = E.suite_defaults(run_dir, suite, data)  # one parameter, synthetic_preset, picks data and models
out = RunOutput(output_dir, synthetic=data.synthetic)
E.ensure_suite(run_dir, data, seed, suite, model_config, variants=("main",), device=device)
models = E.Suite.load(run_dir, seed, E.pick_device(device))
clip, why = E.choose_walkthrough_clip(data.split("test"), clip_index)
gt_cp = E.gt_control_points(clip)
print(f"data: {display_path(data.root)}; models: {display_path(E.resolve_path(run_dir))}")
print(f"clip {clip.name}: {clip.num_frames} frames of {clip.size[0]}x{clip.size[1]} px, "
      f"{len(clip.waveform) / 16000:.2f} s of audio, GT control points at frames "
      f"{[t for t, c in enumerate(gt_cp) if c]}")
print("why this clip:", why)
print("sounding per frame:", clip.meta.get("sounding"))

# %% [markdown]
# ## 1. The clip and its ground truth
# AVSBench samples one frame per second (at 15/16 of each second); the GT mask marks only the object that
# sounds at that instant. A silent object is left out even when it is visible.

# %%
out.figure(viz.mask_grid(clip.frames, {"frame": None, "GT": clip.masks}), "clip")

# %% [markdown]
# ## 2. The audio each frame hears
# Each frame gets one 0.96 s VGGish log-mel example (96 × 64). Around a conversion that window can hold both
# the old and the new source — one reason simultaneous models blur the moment of change.

# %%
fig = viz.audio_panels(clip.waveform, clip_logmel(clip), clip.frame_times, control_points=gt_cp,
                       sounding=clip.meta.get("sounding"))
out.figure(fig, "audio")

# %% [markdown]
# ## 3. Control points from three sources
# * **GT** — from the masks (paper A.1): a frame whose sounding object differs from the previous one's.
# * **cosine** — the paper's baseline: the cosine similarity of consecutive audio embeddings drops.
# * **learned** — a small detector trained on the training clips' GT control points (the offline stand-in
#   for the LLM-based RCPG; see notebook 02).

# %%
E.fit_sources(models, data, ["gt", "cosine", "learned"])
cps = {name: list(models.sources[name](clip)) for name in ("gt", "cosine", "learned")}
for name, cp in cps.items():
    print(f"{name:>8}: control points at frames {[t for t, c in enumerate(cp) if c]}")
out.figure(viz.control_point_timeline(cps, title="control points: each segment is one keyframe + propagation"),
           "control_points")

# %% [markdown]
# ## 4. Keyframes: the Keyframe Processor on each control point
# It fuses the frame's backbone features with the audio tokens of that frame and decodes a mask.

# %%
key = [t for t, c in enumerate(cps["learned"]) if c]
kf = E.keyframe_logits(models, clip, cps["learned"])
out.figure(viz.mask_grid(clip.frames, {"GT": clip.masks, "keyframe model": kf}, frame_idx=key,
                         titles=[f"keyframe t={t}" for t in key]), "keyframes")

# %% [markdown]
# ## 5. Propagation through each segment, against the simultaneous baseline
# Inside a segment the sounding object stays the same, so the propagator carries the keyframe mask forward
# frame by frame (memory of the keyframe and recent frames), inserting each frame's audio.

# %%
runs = {"Simultaneous baseline": E.run_method(E.BASELINE, models, [clip])[0],
        "Co-Prop (learned control points)": E.run_method(E.COPROP, models, [clip])[0],
        "Co-Prop (GT control points)": E.run_method(E.COPROP_GT, models, [clip])[0]}
out.figure(viz.mask_grid(clip.frames, {"GT": clip.masks, **{k: r.logits for k, r in runs.items()}}),
           "propagation")

# %% [markdown]
# ## 6. Masks against GT
# Per-frame Jaccard (J, in %) of each method; dotted lines are the learned control points. On a frame whose GT
# is empty (nothing sounds) J is the share of pixels predicted background (AVSBench's rule).

# %%
pfj = {name: E.per_frame_j(r, clip) for name, r in runs.items()}
out.figure(viz.j_per_frame(pfj, cps["learned"]), "masks_vs_gt")
scores = E.clip_scores(runs, clip)
out.table(scores, "walkthrough_scores", caption=f"One clip ({clip.name}): J, F and Alignment Rate in %; "
          "seconds = prediction time on this machine.")

# %% [markdown]
# ## 7. The clip viewer
# In JupyterLab (or the classic Notebook) this is a live widget: move the frame slider to see every method's
# mask, the control-point timeline, the per-frame J and the audio from that frame on. In headless runs (the
# runner, papermill, tests, CI) the same view is drawn once as a static picture.

# %%
viewer = Viewer(clip, {k: r.logits for k, r in runs.items()}, control_points=cps, per_frame_j=pfj)
out.figure(viewer.static(), "viewer", show=False)   # the report's PNG; the cell shows the viewer itself
viewer

# %%
out.metrics(clip=clip.name, clip_reason=why, **{f"J_{k}": v for k, v in zip(("baseline", "coprop", "coprop_gt"), scores["J %"])},
            units="percent")
