"""Training curves and summaries for the training notebooks (03, 04) and ``coprop demo``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from coprop.train.stages import StageResult

_LABELS = {"keyframe": "keyframe (all frames)", "keyframe_ft": "keyframe fine-tuned (keyframe subset)",
           "propagator": "propagator", "baseline": "simultaneous baseline"}


def history_frame(run_dir: str | Path, stages: list[str] | None = None):
    """metrics.csv of a run as a DataFrame (rows of ``stages`` only, when given)."""
    import pandas as pd

    path = Path(run_dir) / "metrics.csv"
    df = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["stage", "epoch", "loss"])
    return df[df["stage"].isin(stages)].reset_index(drop=True) if stages else df


def history_table(df):
    """The reader's per-epoch table: stage, epoch, training loss, validation J / F / alignment in % (metrics.csv
    keeps them as fractions), optimizer steps and seconds; learning rate and throughput stay in metrics.csv."""
    import pandas as pd

    out = pd.DataFrame({"stage": df["stage"].map(lambda s: _LABELS.get(s, s)), "epoch": df["epoch"],
                        "training loss": df["loss"]})
    for col, name in (("val_J", "val J %"), ("val_F", "val F %"), ("val_alignment", "val alignment %")):
        if col in df.columns:
            out[name] = 100 * df[col]
    for col, name in (("steps", "steps"), ("time_s", "seconds")):
        if col in df.columns:
            out[name] = df[col]
    return out


def plot_history(df, title: str = ""):
    """Loss (left) and validation J / F in % (right) per epoch, one line per stage; legends below the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8))
    for stage, rows in df.groupby("stage", sort=False):
        label = _LABELS.get(stage, stage)
        ax_loss.plot(rows["epoch"], rows["loss"], marker="o", label=label)
        for metric, style in (("val_J", "-"), ("val_F", "--")):
            if metric in rows and rows[metric].notna().any():
                ax_val.plot(rows["epoch"], 100 * rows[metric], style, marker="o", label=f"{label}: {metric[4:]}")
    ax_loss.set(xlabel="epoch", ylabel="training loss (mean per step)", title="loss")
    ax_val.set(xlabel="epoch", ylabel="validation J and F (%)", title="validation J and F", ylim=(0, 100))
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
        if ax.get_legend_handles_labels()[0]:   # below the axes, off the curves
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def summarise(results: Mapping[str, StageResult]) -> dict[str, Any]:
    """Flat numbers for metrics.json: per-stage final val J/F, wall time and samples/s, plus the totals."""
    out: dict[str, Any] = {}
    for stage, r in results.items():
        for key in ("val_J", "val_F", "val_alignment", "loss"):
            if key in r.final:
                out[f"{stage}_{key}"] = float(r.final[key])
        out[f"{stage}_wall_s"] = round(r.wall_s, 2)
        out[f"{stage}_train_samples_per_s"] = round(r.samples_per_s, 3)
        out[f"{stage}_epochs"] = int(r.final.get("epoch", 0))
    last = list(results.values())[-1] if results else None
    if last is not None:
        out["val_J"] = float(last.final.get("val_J", float("nan")))
        out["val_F"] = float(last.final.get("val_F", float("nan")))
    out["wall_time_s"] = round(sum(r.wall_s for r in results.values()), 2)
    return out
