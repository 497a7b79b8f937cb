"""``coprop train {keyframe,finetune,propagator,baseline,all}``: one stage (or all) into a run folder.

Works under ``torchrun --nproc_per_node N -m coprop train ...`` for multi-GPU (DDP) training.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from coprop.cli_args import ArgumentParser, nonneg_int, positive_float, positive_int
from coprop.train import ddp
from coprop.train.recipes import PRESETS, STAGES, stage_params, train_all

_STAGE_ALIASES = {"keyframe": "keyframe", "finetune": "keyframe_ft", "keyframe_ft": "keyframe_ft",
                  "propagator": "propagator", "baseline": "baseline"}


def parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(prog="coprop train", description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=[*_STAGE_ALIASES, "all"], help="stage to train ('all': the four in order)")
    ap.add_argument("--data-root", default="", help="AVSBench root; empty = the synthetic benchmark")
    ap.add_argument("--synthetic-preset", default=None, help="synthetic preset when --data-root is empty "
                    "(default: smoke for --preset smoke, else demo)")
    ap.add_argument("--subset", default="ms3", choices=["s4", "ms3", "avss"])
    ap.add_argument("--run-dir", default=None, help="run folder (default runs/<subset>-<config>-<preset>-s<seed>)")
    ap.add_argument("--config", default="tiny", help="model config: tiny | paper")
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS), help="training hyper-parameter preset")
    ap.add_argument("--epochs", type=positive_int, default=None, help="override the preset's epochs")
    ap.add_argument("--batch-size", type=positive_int, default=None)
    ap.add_argument("--lr", type=positive_float, default=None)
    ap.add_argument("--seed", type=nonneg_int, default=0)
    ap.add_argument("--max-steps-per-epoch", type=positive_int, default=None)
    ap.add_argument("--checkpoint-every", type=nonneg_int, default=None,
                    help="optimizer steps between checkpoints (0: at epoch ends only)")
    ap.add_argument("--num-workers", type=nonneg_int, default=None)
    ap.add_argument("--device", default=None, help="auto | cpu | cuda")
    ap.add_argument("--amp", default=None, choices=["auto", "bf16", "fp16", "off"])
    ap.add_argument("--val-limit", type=positive_int, default=None, help="validate on the first N val clips only")
    ap.add_argument("--no-resume", action="store_true", help="start over instead of resuming from checkpoints")
    ap.add_argument("--aot-weights", default=None, metavar="PATH",
                    help="R50-AOTL checkpoint the paper config's propagator starts from (paper 4.2; default "
                         "R50_AOTL_PRE_YTB_DAV.pth in $COPROP_PRETRAINED or <repo>/pretrained)")
    return ap


def cli(argv: list[str]) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.aot_weights and not Path(args.aot_weights).expanduser().is_file():
        ap.error(f"--aot-weights {args.aot_weights}: file not found (the released R50_AOTL_PRE_YTB_DAV.pth)")
    overrides = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                        max_steps_per_epoch=args.max_steps_per_epoch,
                                        checkpoint_every=args.checkpoint_every, num_workers=args.num_workers,
                                        device=args.device, amp=args.amp).items() if v is not None}
    if args.no_resume:
        overrides["resume"] = False
    stages = list(STAGES) if args.stage == "all" else [_STAGE_ALIASES[args.stage]]
    model_overrides = {"propagator_weights": args.aot_weights} if args.aot_weights else None
    stage_params(args.preset, stages[0], **overrides)  # reject bad values before loading any data
    ctx = ddp.setup(overrides.get("device", "auto"))   # one process group for every stage of this command
    try:
        results = train_all(args.data_root, args.subset, args.run_dir, preset=args.preset, config=args.config,
                            seed=args.seed, stages=stages, synthetic_preset=args.synthetic_preset,
                            val_limit=args.val_limit, model_overrides=model_overrides, **overrides)
    finally:
        ddp.teardown(ctx)
    if ctx.is_main:
        for stage, r in results.items():
            final = {k: v for k, v in r.final.items() if k.startswith("val_") or k == "loss"}
            print(f"{stage}: {r.weights}  wall {r.wall_s:.1f} s  {r.samples_per_s:.1f} samples/s  {final}")
    return 0
