"""Compare control-point sources against GT on a split: what notebook 02 (prompt engineering) drives.

Rows follow paper Table 2b (Cosine, 1-step, 3-step, RCPG = 3-step + retrieval), plus the offline learned
detector and the GT oracle. The paper's Table 2b reports segmentation J/F downstream of each source; here
the sources are scored directly on their control points (boundary P/R/F1 with a frame tolerance).
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from coprop.controlpoints.detectors import ControlPointSource, get_source
from coprop.controlpoints.llm import LLMBackend, make_backend
from coprop.controlpoints.prompts import PromptSet
from coprop.controlpoints.retrieval import RetrievalStore, clip_category
from coprop.controlpoints.scoring import score_table
from coprop.data.clip import Clip
from coprop.progress import progress

# display name -> (source name, constructor kwargs); LLM rows need a backend
OFFLINE_ROWS = {"Cosine": ("cosine", {}), "Learned (offline)": ("learned", {})}
LLM_ROWS = {"1-step": "1-step", "3-step": "3-step", "RCPG (3-step + retrieval)": "3-step+retrieval"}
ORACLE = "GT oracle"


def backend_from_params(backend: str, model_path: str = "", base_url: str = "", model_name: str = "",
                        profile: str = "auto", api_key_env: str = "", cache_dir: str = "",
                        **kw) -> tuple[LLMBackend | None, str]:
    """(backend or None, a sentence saying what runs) from notebook parameters."""
    kind = (backend or "").strip().lower()
    cache = cache_dir or None
    if not kind:
        return None, ("No LLM backend configured (backend=''): the 1-step, 3-step and RCPG rows are not run; "
                      "the offline detectors (cosine, learned) and the GT oracle are compared. Set backend='local' "
                      "with model_path=<Qwen2-Audio folder>, or backend='http' with base_url=<vLLM/DashScope URL>.")
    if kind == "local":
        be = make_backend("local", model_path=model_path, cache=cache, **kw)
        return be, f"LLM backend: local transformers model {model_path} ({be.model_type})."
    be = make_backend(kind, base_url=base_url, model=model_name, profile=profile, api_key_env=api_key_env,
                      cache=cache, **kw)
    return be, f"LLM backend: chat server {base_url} (profile {be.profile}, model {be.model})."


def build_sources(backend: LLMBackend | None, k: int = 3, seed: int = 0, prompts: PromptSet | None = None,
                  fallback: str = "learned") -> dict[str, ControlPointSource]:
    """Display name -> unfitted source, in table order."""
    out: dict[str, ControlPointSource] = {}
    for label, (name, kw) in OFFLINE_ROWS.items():
        if name == "learned":
            kw = {**kw, "seed": seed}
        out[label] = get_source(name, **kw)
    if backend is not None:
        for label, variant in LLM_ROWS.items():
            out[label] = get_source("rcpg", backend=backend, variant=variant, k=k, prompts=prompts,
                                    fallback=get_source(fallback, seed=seed) if fallback == "learned"
                                    else get_source(fallback))
    out[ORACLE] = get_source("gt")
    return out


def fit_sources(sources: dict[str, ControlPointSource], train_clips: Sequence[Clip],
                skip: Sequence[str] = ()) -> dict:
    """Fit every source on ``train_clips`` except the labels in ``skip`` (fitted already, e.g. by
    ``coprop demo``); the clips are read only when some source learns from them (the GT oracle does not)."""
    todo = {label: src for label, src in sources.items() if label not in skip}
    if any(type(src).fit is not ControlPointSource.fit for src in todo.values()):
        train = list(train_clips)
        for label, src in progress(todo.items(), desc="fit sources", total=len(todo)):
            src.fit(train)
    return sources


def predict(sources: dict[str, ControlPointSource], clips: Sequence[Clip]) -> dict[str, dict[str, list[int]]]:
    """Display name -> clip name -> control points."""
    clips = list(clips)
    out = {}
    for label, src in progress(sources.items(), desc="run sources", total=len(sources)):
        out[label] = dict(zip([c.name for c in clips], src.predict_many(clips)))
    return out


def compare(predictions: dict, clips: Sequence[Clip], tolerances: Sequence[int] = (0, 1)) -> pd.DataFrame:
    """score_table against the GT source, per category (clip_category) and overall ('all')."""
    gt_src = get_source("gt")
    gt = {c.name: gt_src(c) for c in clips}
    cats = {c.name: clip_category(c) or "unknown" for c in clips}
    return score_table(predictions, gt, tolerances, cats)


def table_2b(scores: pd.DataFrame, llm_ran: bool) -> pd.DataFrame:
    """One row per Table 2b method (plus offline and oracle rows): F1@0, F1@1, P@1, R@1, exact."""
    rows = []
    order = list(OFFLINE_ROWS) + list(LLM_ROWS) + [ORACLE]
    allc = scores[scores.category == "all"]
    for label in order:
        sub = allc[allc.source == label]
        if sub.empty:
            note = "not run: no LLM backend configured" if label in LLM_ROWS and not llm_ran else "not run"
            rows.append({"method": label, "f1@0": float("nan"), "f1@1": float("nan"), "precision@1": float("nan"),
                         "recall@1": float("nan"), "exact": float("nan"), "clips": 0, "note": note})
            continue
        t0, t1 = sub[sub.tolerance == 0].iloc[0], sub[sub.tolerance == 1].iloc[0]
        rows.append({"method": label, "f1@0": t0.f1, "f1@1": t1.f1, "precision@1": t1.precision,
                     "recall@1": t1.recall, "exact": t0.exact, "clips": int(t0.clips), "note": ""})
    return pd.DataFrame(rows)


def headline_metrics(table: pd.DataFrame) -> dict[str, float]:
    """'f1@0/<method>' and 'f1@1/<method>' for every row of ``table_2b`` that ran."""
    out = {}
    for _, row in table.iterrows():
        if row["clips"]:
            out[f"f1@0/{row['method']}"] = float(row["f1@0"])
            out[f"f1@1/{row['method']}"] = float(row["f1@1"])
    return out


def plot_category_f1(scores: pd.DataFrame, tolerance: int = 1):
    """Grouped bars: boundary F1 per category (x) for each source."""
    from matplotlib.figure import Figure  # no pyplot: works headless and leaves the notebook's backend alone

    sub = scores[(scores.tolerance == tolerance) & (scores.category != "all")]
    table = sub.pivot_table(index="category", columns="source", values="f1", aggfunc="first", sort=False)
    fig = Figure(figsize=(max(6, 0.9 * len(table) + 3), 3.6))
    ax = fig.subplots()
    if table.empty:
        ax.text(0.5, 0.5, "no categories to plot", ha="center", va="center")
    else:
        table.plot.bar(ax=ax, width=0.8)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)   # off the bars
    ax.set_ylabel(f"boundary F1, 0-1 (tolerance {tolerance} frame{'s' if tolerance != 1 else ''})")
    ax.set_title("Control points per category")
    fig.tight_layout()
    return fig


def prompt_variants(clip: Clip, prompts: PromptSet, store: RetrievalStore | None, k: int = 3) -> dict[str, str]:
    """The user turns of every variant for one clip, the retrieved examples found with the clip's own
    category standing in for the model's answer to Q2."""
    known = store.categories() if store is not None else []
    cat = clip_category(clip) or "<category>"
    examples, how = ([], "none") if store is None else store.lookup(cat, k=k, exclude=clip.name)
    out = {}
    for variant in ("1-step", "3-step", "3-step+retrieval"):
        turns = prompts.dialogue(variant, clip.num_frames, known, category=cat, examples=examples)
        out[variant] = "\n\n".join(f"[user turn {i + 1}]\n{t}" + ("\n[model answers]" if i < len(turns) - 1 else "")
                                   for i, t in enumerate(turns))
    out["retrieval"] = f"category {cat!r} -> {len(examples)} example(s) by {how}: {[e.name for e in examples]}"
    return out


def source_reports(sources: dict[str, ControlPointSource]) -> dict:
    """Counters of every LLM source (fallbacks, parse repairs, backend requests) for metrics.json."""
    out = {}
    for label, src in sources.items():
        if hasattr(src, "report"):
            out[label] = src.report()
    return out
