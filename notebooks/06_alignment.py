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
# # 06 — Temporal alignment: does each method segment the object that is sounding *now*?
#
# The Alignment Rate (paper §4.1) is the share of assessed frames whose predicted sounding object is the GT
# one (binary: IoU ≥ τ or both empty; semantic: the same set of classes). We report it
#
# * on **MOC-style clips** — test clips whose GT holds a source conversion after frame 0 (paper Fig. 3 and
#   Table 3; the paper's MOC has 17 of MS3's 64 test clips),
# * **within ±k frames of a conversion** and **farther from one**, over all test clips: a method that lags
#   behind the audio loses exactly the frames next to conversions,
#
# for the simultaneous baseline, Co-Prop (learned control points, or RCPG with an LLM) and Co-Prop with the
# GT control points (the upper bound of control-point quality). Timelines show, frame by frame, which object
# each method segments. Data: the synthetic benchmark unless `data_root` points at AVSBench.
# The paper's Fig. 3 prints no numbers, so there is no paper column here.

# %%
from IPython.display import Markdown, display

from coprop import experiments as E
from coprop.reports import RunOutput
from coprop.widgets import Viewer

# %% tags=["parameters"]
data_root: str = ""  # AVSBench root (empty: the built-in synthetic benchmark)
synthetic_preset: str = "smoke"  # synthetic preset generated on demand when data_root is empty
output_dir: str = "reports/_scratch/06_alignment"  # where tables, figures and metrics.json go
seed: int = 0  # random seed (the synthetic data and the training seed of the suite)
subset: str = "ms3"  # s4 | ms3 | avss
run_dir: str = ""  # trained models, missing ones are trained here (empty: runs/<synthetic_preset>, e.g. runs/demo of coprop demo)
suite: str = ""  # training sizes for missing models: smoke | demo | paper (empty: the synthetic preset, paper for AVSBench)
model_config: str = "tiny"  # tiny (CPU, random init) | paper (GPU, local weight files)
seeds: str = ""  # training seeds averaged, comma-separated ("0,1,2"; empty: seed)
max_clips: int = 2  # test clips evaluated (-1: all)
k: int = 1  # 'near' a conversion: within ±k frames of a GT control point after frame 0
tau: float = 0.5  # binary alignment: IoU with the GT mask at least tau
timeline_clips: int = 2  # MOC-style clips drawn as timelines
llm_backend: str = ""  # RCPG LLM: '' (none) | local | http
llm_model: str = ""  # local: model folder, http: model name
llm_url: str = ""  # http: base URL of an OpenAI-compatible server
device: str = "auto"  # auto | cpu | cuda
num_threads: int = 1  # CPU threads for torch (1 is fastest on a shared, busy CPU, 0: torch default)

# %%
E.set_threads(num_threads)
data = E.Data(data_root, synthetic_preset, subset, seed)
run_dir, suite = E.suite_defaults(run_dir, suite, data)  # one parameter, synthetic_preset, picks data and models
out = RunOutput(output_dir, synthetic=data.synthetic)
seed_list = E.parse_seeds(seeds or str(seed))
for s in seed_list:
    E.ensure_suite(run_dir, data, s, suite, model_config, variants=("main",), device=device)
ev = E.evaluation(run_dir, data, seed_list, max_clips, llm=dict(backend=llm_backend, model=llm_model,
                                                                 url=llm_url), k=k, device=device)
methods = E.alignment_methods()
if llm_backend:
    methods[1] = E.rcpg_stand_in(ev)
rate_methods = methods + [E.KEYFRAME_ALONE]   # the keyframe model on every frame: no propagation at all
ev.run(rate_methods)
moc = ev.subset(E.is_moc)
print(f"{ev.data_label}; MOC-style clips (a GT conversion after frame 0): {len(moc.clips)} of {len(ev.clips)}")

# %% [markdown]
# ## Alignment Rate per method: all test clips (near / far from conversions) and the MOC-style clips
# Rates in % with 95 % intervals (two-level bootstrap over training seeds and test clips, as in 05);
# `Δ AR near - far` is the paired difference of a method's two rates on the same draws. The benchmark is built
# so that a method which lags behind the audio loses the frames next to a conversion: the simultaneous
# baseline's rate near conversions should lie below its rate far from them, with intervals apart.

# %%
rates = E.alignment_report(ev, rate_methods)
display(out.table(rates, "alignment_rates", caption=f"Alignment Rate (%), tau {tau}, near = within ±{k} frames "
                  "of a GT source conversion, with 95 % intervals; training seeds "
                  f"{','.join(map(str, seed_list))}. MOC-style = clips with a conversion after frame 0 (paper "
                  "Fig. 3)."))
out.figure(E.fig3(rates, k, title=f"Alignment Rate (paper Fig. 3 layout) -- {ev.data_label}"), "fig3_alignment")

# %%
moc_ev = moc if moc.clips else ev
CLAIM = "paper's claim"
claim = E.intervals.claim(moc_ev, "Co-Prop keeps the sounding object better than the simultaneous baseline "
                          "on MOC-style clips (Fig. 3)", methods[1], methods[0], 1, "AR all")
check = E.intervals.paired(ev, methods[0], methods[0], "AR near", metric_b="AR far")
by = {r["method"]: r for r in rates[rates["clips"] == "all test clips"].to_dict("records")}
base = by[methods[0].label]
near = f"AR within ±{k} of a conversion %"
Markdown(f"- *{claim[CLAIM]}*: Alignment Rate {methods[1].label} minus {methods[0].label} "
         f"on {len(moc_ev.clips)} clips: {claim['Δ AR all %']:+.1f} points [{claim['Δ AR all %_lo']:+.1f}, "
         f"{claim['Δ AR all %_hi']:+.1f}] — **{claim['verdict']}**.\n"
         f"- The benchmark's check: the simultaneous baseline's Alignment Rate within ±{k} of a conversion is "
         f"{base[near]:.1f} % [{base[near + '_lo']:.1f}, {base[near + '_hi']:.1f}], farther "
         f"{base['AR farther %']:.1f} % [{base['AR farther %_lo']:.1f}, {base['AR farther %_hi']:.1f}]; paired "
         f"difference {100 * check[0]:+.1f} points [{100 * check[1]:+.1f}, {100 * check[2]:+.1f}]; intervals apart: "
         f"**{base['near below far, intervals apart']}**.")

# %% [markdown]
# ## Timelines: which object each method segments, frame by frame
# Green: the GT sounding object; red: something else — `(late)` still the previous source, `(early)` already
# the next one. Black lines: GT source conversions.

# %%
shown = (moc.clips or ev.clips)[:max(1, timeline_clips)]
figs = [E.timeline_figure(ev, methods, c, tau) for c in shown]
out.figure(E.stack_figures(figs), "timelines")

# %% [markdown]
# ## One clip in the viewer (interactive in JupyterLab, a static grid in headless runs)

# %%
clip = shown[0]
viewer = Viewer(clip, {m.label: ev.result(m, clip.name).logits for m in methods if ev.available(m)},
                control_points={"GT": E.gt_control_points(clip),
                                **{m.label: ev.result(m, clip.name).control_points for m in methods[1:]}},
                per_frame_j={m.label: E.per_frame_j(ev.result(m, clip.name), clip) for m in methods})
out.figure(viewer.static(), "viewer_" + clip.name, show=False)   # the report PNG; the cell shows the viewer
viewer

# %%
out.metrics(**{f"AR_near_{name}": by[label][near] for name, label in
               (("baseline", methods[0].label), ("coprop", methods[1].label), ("coprop_gt", methods[2].label))},
            **{f"AR_far_{name}": by[label]["AR farther %"] for name, label in
               (("baseline", methods[0].label), ("coprop", methods[1].label))},
            moc_clips=len(moc.clips), clips=len(ev.clips), k=k, tau=tau, units="percent")
