"""Learning curves of the demo's models on the synthetic MS3-style benchmark: validation J and Alignment Rate
against optimizer steps and against the number of distinct training clips.

    python benchmarks/learning_curves.py                      # keyframe, propagator, baseline; demo data
    python benchmarks/learning_curves.py --stages keyframe --clips 100,300,1000 --steps keyframe=1500

For each stage, one run on all training clips is validated every ``--val-every`` steps (the curve against
steps), and runs on the first N clips for each N of ``--clips`` with the same number of steps give the curve
against distinct clips (the all-clips run is its last point). The hyper-parameters are the demo suite's
(``coprop.experiments.SUITES['demo']``: tiny config at 64 px, its batch sizes, learning rates and cosine schedule
over the run's steps). Every run's audio encoder starts from the tiny encoder pre-trained as a sound classifier on the
same N clips (coprop.train.audio_pretrain, as in the demo); the propagator starts from the all-clips keyframe
model's backbone and the baseline from all of that model, as in the demo (the demo's 4-level propagator then continues
from its plain AOT; here the 4-level one trains from the backbone). Validation: the demo's val split; keyframe = the model on every annotated frame on its own,
propagator = propagation from GT keyframes at GT control points (``coprop.train.tasks``), baseline = whole clips.
One training seed. Runs go to two worker processes (one torch thread each).

Writes ``learning_curves.csv``, ``learning_curves.md`` and ``learning_curves.png`` into ``--out-dir``
(default reports/learning_curves/).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STAGES = ("keyframe", "propagator", "baseline")
DEFAULT_STEPS = {"keyframe": 1100, "propagator": 450, "baseline": 200}   # the demo's budgets (its AOT propagator)
_DATA: dict = {}      # prepared clips, filled before the workers fork (shared copy-on-write)


def _cfg(stage: str):
    from coprop.experiments import suite_config

    return suite_config("tiny", "demo", "main")


def _audio(n_clips: int, seed: int, out: str) -> list[dict]:
    """The audio encoder pre-trained on the first ``n_clips`` training clips (as coprop demo does on all)."""
    from coprop.data.synth_scene import CATEGORIES
    from coprop.experiments import SUITES
    from coprop.train.audio_pretrain import frames_and_targets, pretrain_audio_encoder

    x, y = frames_and_targets(_DATA["train"][:n_clips], _DATA["raw"][:n_clips], CATEGORIES)
    val = frames_and_targets(_DATA["val"], _DATA["raw_val"], CATEGORIES)
    res = pretrain_audio_encoder(_cfg("audio"), x, y, out, seed=seed, val=val, **SUITES["demo"]["audio_pretrain"])
    return [{"stage": "audio encoder", "train_clips": n_clips, "steps": res["steps"], "val_F1": res.get("val_f1"),
             "train_loss": res["loss"], "train_s": round(res["seconds"], 1)}]


def _run(stage: str, n_clips: int, steps: int, val_every: int, seed: int, out: str, init: str | None,
         audio: str) -> list[dict]:
    """One training run; returns one row per validation."""
    from coprop import train as T
    from coprop.experiments import SUITES

    tr, va = _DATA["train"], _DATA["val"]
    sub = T.prepare(tr[:n_clips], tr[0].frames.shape[1])   # already prepared: only wrapped
    over = {k: v for k, v in SUITES["demo"]["train"].get(stage, {}).items()
            if k not in ("epochs", "max_steps_per_epoch", "checkpoint_every")}
    # an epoch holds at most as many batches as the N clips give: validate every min(val_every, that) steps and
    # run as many epochs as the step budget needs, so every N trains for the same number of steps
    bs = int({**T.PRESETS["demo"].get(stage, {}), **over}.get("batch_size", 1))
    per_epoch = -(-(sum(int(c.gt.sum()) for c in sub) if stage == "keyframe" else len(sub)) // bs)
    val_every = max(1, min(val_every, per_epoch))
    p = T.stage_params("demo", stage, **over, seed=seed, epochs=max(1, steps // val_every),
                       max_steps_per_epoch=val_every, checkpoint_every=0, resume=False, num_threads=1, device="cpu")
    fn = {"keyframe": T.train_keyframe, "propagator": T.train_propagator, "baseline": T.train_baseline}[stage]
    kw = {} if stage == "keyframe" else {"init_weights": init} if stage == "baseline" else {"init_backbone": init}
    t0 = time.perf_counter()
    res = fn(_cfg(stage).replace(audio_weights=audio), sub, va, out, params=p, **kw)
    rows = []
    for h in res.history:
        rows.append({"stage": stage, "train_clips": n_clips, "steps": int(h["epoch"]) * val_every,
                     "val_J": h.get("val_J"), "val_F": h.get("val_F"), "val_alignment": h.get("val_alignment"),
                     "train_loss": h.get("loss"), "train_s": round(sum(x["time_s"] for x in res.history
                                                                      if x["epoch"] <= h["epoch"]), 1)})
    rows[-1]["wall_s"] = round(time.perf_counter() - t0, 1)
    return rows


def run_curves(run_dir: Path) -> "pd.DataFrame":
    """The validation curves a demo run recorded (``<run_dir>/seed<N>/<variant>/metrics.csv``: one row per epoch):
    stage, variant, seed, optimizer steps so far, val J / F / alignment, train loss."""
    import pandas as pd

    rows = []
    for f in sorted(Path(run_dir).glob("seed*/*/metrics.csv")):
        seed, variant = int(f.parent.parent.name[4:]), f.parent.name
        df = pd.read_csv(f)
        for stage, g in df.groupby("stage", sort=False):
            g = g.sort_values("epoch")
            for r, steps in zip(g.to_dict("records"), g["steps"].cumsum()):
                rows.append({"stage": stage, "variant": variant, "seed": seed, "steps": int(steps),
                             "val_J": r.get("val_J"), "val_F": r.get("val_F"),
                             "val_alignment": r.get("val_alignment"), "train_loss": r.get("loss")})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--clips", default="100,300", help="smaller training-set sizes (the full split is added)")
    ap.add_argument("--steps", nargs="*", default=[], metavar="STAGE=N",
                    help=f"optimizer steps per run (default {DEFAULT_STEPS})")
    ap.add_argument("--val-every", type=int, default=0, help="steps between validations (default: steps / 4)")
    ap.add_argument("--train-clips", type=int, default=None, help="generate this many training clips instead of "
                                                                  "the demo preset's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out-dir", default="reports/learning_curves")
    ap.add_argument("--run-dir", default="runs/learning_curves")
    ap.add_argument("--from-run", default="", help="only tabulate the per-epoch validation curves a demo run "
                                                   "recorded (e.g. runs/demo) into demo_run_curves.csv/.md")
    a = ap.parse_args(argv)
    import pandas as pd

    if a.from_run:
        out = Path(a.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        df = run_curves(Path(a.from_run))
        df.to_csv(out / "demo_run_curves.csv", index=False)
        piv = df.groupby(["stage", "variant", "steps"])[["val_J", "val_alignment", "train_loss"]].agg(["mean", "min",
                                                                                                     "max"])
        lines = ["# Validation curves of the demo run's models (mean, min and max over training seeds; val split: "
                 "the suite's 8 validation clips)", "", "| stage | variant | steps | val J % (min-max) | "
                 "val Alignment % (min-max) | train loss |", "|---|---|---|---|---|---|"]
        def span(r, col) -> str:   # the text-guided variant is trained without validation: a dash
            m, lo, hi = (r[(col, k)] for k in ("mean", "min", "max"))
            return "—" if m != m else f"{100 * m:.1f} ({100 * lo:.1f}-{100 * hi:.1f})"

        for (stage, variant, steps), r in piv.iterrows():
            lines.append(f"| {stage} | {variant} | {steps} | {span(r, 'val_J')} | {span(r, 'val_alignment')} | "
                         f"{r[('train_loss', 'mean')]:.3f} |")
        (out / "demo_run_curves.md").write_text("\n".join(lines) + "\n")
        print((out / "demo_run_curves.md").read_text())
        return 0

    from coprop import train as T
    from coprop.data import open_dataset
    from coprop.data.synth import ensure
    from coprop.paths import display_path, repo_root
    from coprop.train.jobs import Job, run_jobs

    steps = dict(DEFAULT_STEPS)
    for s in a.steps:
        k, _, v = s.partition("=")
        steps[k] = int(v)
    root = ensure("demo", 0, train_clips=a.train_clips)
    size = _cfg("keyframe").image_size
    train_ds, val_ds = open_dataset(root, "ms3", "train"), open_dataset(root, "ms3", "val")
    _DATA["train"] = T.prepare(train_ds, size, "preparing train clips")
    _DATA["val"] = T.prepare(val_ds, size, "preparing val clips")
    _DATA["val"].mode = _DATA["train"].mode
    _DATA["raw"] = [train_ds[i] for i in range(len(train_ds))]
    _DATA["raw_val"] = [val_ds[i] for i in range(len(val_ds))]
    full = len(_DATA["train"])
    sizes = sorted({int(n) for n in a.clips.split(",") if n and int(n) < full} | {full})
    run_dir = Path(a.run_dir) if Path(a.run_dir).is_absolute() else repo_root() / a.run_dir
    kf_init = str(run_dir / f"keyframe-n{full}" / "keyframe.safetensors")
    audio = {n: str(run_dir / f"audio-n{n}" / "audio_encoder.safetensors") for n in sizes}
    jobs = [Job(f"audio-n{n}", _audio, dict(n_clips=n, seed=a.seed, out=audio[n])) for n in sizes]
    for stage in a.stages:
        every = a.val_every or max(1, steps[stage] // 4)
        for n in sizes:
            after = ("keyframe-n%d" % full,) if stage != "keyframe" and "keyframe" in a.stages else ()
            jobs.append(Job(f"{stage}-n{n}", _run, dict(stage=stage, n_clips=n, steps=steps[stage], val_every=every,
                                                        seed=a.seed, out=str(run_dir / f"{stage}-n{n}"),
                                                        init=kf_init if stage != "keyframe" else None,
                                                        audio=audio[n]), after + (f"audio-n{n}",)))
    # the all-clips audio encoder and keyframe run first: everything else waits for its backbone
    jobs.sort(key=lambda j: (j.name not in (f"audio-n{full}", f"keyframe-n{full}"), j.name))
    t0 = time.perf_counter()
    done = run_jobs(jobs, workers=a.workers, echo=lambda m: print(m, flush=True))
    rows = [r for j in jobs for r in done[j.name][0]]
    df = pd.DataFrame(rows)
    out = Path(a.out_dir) if Path(a.out_dir).is_absolute() else repo_root() / a.out_dir
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "learning_curves.csv", index=False)
    _write_md(df, out / "learning_curves.md", display_path(root), a.seed, time.perf_counter() - t0)
    _plot(df, out / "learning_curves.png", full)
    print((out / "learning_curves.md").read_text())
    return 0


def _write_md(df, path: Path, data: str, seed: int, wall: float) -> None:
    load = os.getloadavg()
    lines = [f"# Learning curves (synthetic MS3-style demo data `{data}`, training seed {seed})", "",
             "Validation on the demo's val split after every block of steps; J, F and Alignment Rate in %. "
             "keyframe = the model alone on every annotated frame; propagator = from GT keyframes at GT control "
             "points; baseline = whole clips.", "",
             "audio encoder = its pre-training as a sound classifier (val F1 of the audible categories per frame).",
             "", "| stage | training clips | steps | val J % | val F % | val Alignment % | audio val F1 % | train loss | "
             "train s |", "|---|---|---|---|---|---|---|---|---|"]

    def pct(v) -> str:
        return "—" if v is None or v != v else f"{100 * v:.1f}"

    for r in df.to_dict("records"):
        lines.append(f"| {r['stage']} | {r['train_clips']} | {r['steps']} | {pct(r.get('val_J'))} | "
                     f"{pct(r.get('val_F'))} | {pct(r.get('val_alignment'))} | {pct(r.get('val_F1'))} | "
                     f"{r['train_loss']:.3f} | {r['train_s']:.0f} |")
    lines += ["", f"Wall time {wall / 60:.1f} min with 2 worker processes; load average at the end "
              f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores."]
    path.write_text("\n".join(lines) + "\n")


def _plot(df, path: Path, full: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = df[df["stage"] != "audio encoder"]
    stages = list(dict.fromkeys(df["stage"]))
    fig, axes = plt.subplots(2, len(stages), figsize=(4.2 * len(stages), 6.4), squeeze=False)
    for i, st in enumerate(stages):
        d = df[df["stage"] == st]
        ax = axes[0, i]
        for n, g in d.groupby("train_clips"):
            ax.plot(g["steps"], 100 * g["val_J"], marker="o", label=f"{n} clips J")
        g = d[d["train_clips"] == full]
        ax.plot(g["steps"], 100 * g["val_alignment"], marker="s", ls="--", color="k", label=f"{full} clips alignment")
        ax.set(title=st, xlabel="optimizer steps", ylabel="validation %", ylim=(0, 100))
        ax.legend(fontsize=7, loc="lower right")
        last = d.sort_values("steps").groupby("train_clips").last().reset_index()
        ax = axes[1, i]
        ax.plot(last["train_clips"], 100 * last["val_J"], marker="o", label="val J")
        ax.plot(last["train_clips"], 100 * last["val_alignment"], marker="s", ls="--", label="val alignment")
        ax.set(xscale="log", xlabel="distinct training clips", ylabel="validation % (end of run)", ylim=(0, 100))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
