"""One training loop for every stage: AdamW, LR schedule, AMP on GPU, DDP, checkpoints, exact resume.

``fit`` knows nothing about audio or masks: a stage hands it a model, a map-style dataset of tensor
dicts, a ``loss_fn(model, batch) -> scalar`` and an optional ``evaluate(model) -> dict`` for validation.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from coprop.errors import ConfigError
from coprop.io import atomic_path
from coprop.models.common import cpu_layout
from coprop.progress import progress
from coprop.train import checkpoint as ckpt
from coprop.train import ddp
from coprop.train.order import epoch_batches, epoch_seed


@dataclass
class TrainParams:
    epochs: int = 1
    batch_size: int = 4
    lr: float = 1e-4                     # paper 4.2: Adam, 1e-4, batch 4, 100 epochs
    weight_decay: float = 0.01
    scheduler: str = "cosine"            # 'cosine' | 'step' | 'constant' (stepped once per optimizer step)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01           # cosine floor as a fraction of lr
    step_epochs: int = 30                # 'step': multiply lr by step_gamma every step_epochs epochs
    step_gamma: float = 0.1
    grad_clip: float | None = 1.0
    amp: str = "auto"                    # 'auto' (bf16 if supported else fp16) | 'bf16' | 'fp16' | 'off'; GPU only
    seed: int = 0
    checkpoint_every: int = 50           # optimizer steps between mid-epoch checkpoints; 0 = epoch ends only
    keep_checkpoints: int = 2            # the previous one survives until the new one is complete
    max_steps_per_epoch: int | None = None   # cap for smoke runs
    num_workers: int = 0                 # >0 is still exact: order and per-sample randomness are (seed, epoch)
    device: str = "auto"
    resume: bool = True                  # continue from the newest checkpoint of this stage if there is one
    val_every: int = 1                   # epochs between validations (the last epoch is always validated)
    deterministic: bool = False          # GPU: torch.use_deterministic_algorithms (slower, bit-exact resume)
    ddp_find_unused: bool = False        # DDP: allow parameters that get no gradient in a step (slower)
    num_threads: int | None = None       # CPU intra-op threads while training (None: leave torch's setting);
                                         # 1 is often fastest on a shared, oversubscribed CPU

    def replace(self, **changes) -> "TrainParams":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown training parameter(s) {sorted(unknown)}; known: "
                              f"{sorted(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FitResult:
    model: torch.nn.Module                       # unwrapped, trained, in eval mode
    history: list[dict[str, Any]] = field(default_factory=list)
    train_time_s: float = 0.0                    # optimizer-step time over all epochs (resumes included)
    samples: int = 0                             # training samples seen by all ranks, all epochs
    resumed_from: str | None = None

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_time_s if self.train_time_s > 0 else float("nan")

    @property
    def last(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp in ("bf16", "fp16"):
        return torch.bfloat16 if amp == "bf16" else torch.float16
    raise ConfigError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")


def make_scheduler(opt: torch.optim.Optimizer, p: TrainParams, steps_per_epoch: int):
    total = max(1, p.epochs * steps_per_epoch)
    warm = max(0, p.warmup_steps)

    if p.scheduler == "cosine":
        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return p.min_lr_ratio + (1 - p.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    elif p.scheduler == "step":
        every = max(1, p.step_epochs * steps_per_epoch)

        def factor(step: int) -> float:
            return ((step + 1) / warm if step < warm else 1.0) * p.step_gamma ** (step // every)
    elif p.scheduler == "constant":
        def factor(step: int) -> float:
            return (step + 1) / warm if step < warm else 1.0
    else:
        raise ConfigError(f"scheduler must be 'cosine', 'step' or 'constant', got {p.scheduler!r}")
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _match_layouts(opt: torch.optim.Optimizer) -> None:
    """Checkpoints store tensors contiguous; a channels-last parameter's moments must get its layout back, or the
    fused AdamW kernel, which walks parameter, gradient and moments in memory order, would pair wrong elements."""
    for group in opt.param_groups:
        for q in group["params"]:
            st = opt.state.get(q, {})
            for k, v in st.items():
                if torch.is_tensor(v) and v.shape == q.shape and v.stride() != q.stride():
                    st[k] = torch.empty_like(q).copy_(v)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _signature(p: TrainParams, n: int, world: int, steps_per_epoch: int) -> dict[str, Any]:
    """What must match for a resume to continue the same run rather than silently start another."""
    return {"seed": p.seed, "batch_size": p.batch_size, "world_size": world, "num_samples": n,
            "epochs": p.epochs, "steps_per_epoch": steps_per_epoch, "lr": p.lr, "scheduler": p.scheduler}


def write_metrics_csv(path: Path, stage: str, rows: list[dict[str, Any]]) -> None:
    """metrics.csv holds every stage of a run: replace this stage's rows, keep the others'."""
    kept: list[dict[str, Any]] = []
    if path.exists():
        with open(path, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r.get("stage") != stage]
    all_rows = kept + [{"stage": stage, **r} for r in rows]
    cols: list[str] = []
    for r in all_rows:
        cols += [c for c in r if c not in cols]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(all_rows)


def fit(model: torch.nn.Module, dataset, loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
        params: TrainParams, out_dir: str | Path, stage: str,
        evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        collate: Callable = default_collate, metrics_csv: str | Path | None = None,
        on_step_end: Callable[[int], None] | None = None,
        trainable: Callable[[torch.nn.Module], list[torch.nn.Parameter]] | None = None,
        identity: dict[str, Any] | None = None) -> FitResult:
    """Train ``model`` on ``dataset``; checkpoints under ``out_dir/checkpoints/<stage>/``.

    With ``params.resume`` a run finds its newest loadable checkpoint and continues from the exact step;
    a finished stage returns at once with its trained weights. ``on_step_end(global_step)`` is called
    after every optimizer step (after any checkpoint), e.g. to stop a run in tests. ``identity`` (e.g. the
    dataset's root and split) joins the checkpoint signature, so a run folder reused for other data is
    refused instead of resumed.
    """
    p = params
    threads_before = torch.get_num_threads()
    if p.num_threads:
        torch.set_num_threads(p.num_threads)
    try:
        return _fit(model, dataset, loss_fn, p, out_dir, stage, evaluate, collate, metrics_csv, on_step_end,
                    trainable, identity)
    finally:
        torch.set_num_threads(threads_before)


def _fit(model, dataset, loss_fn, p: TrainParams, out_dir, stage, evaluate, collate, metrics_csv, on_step_end,
         trainable, identity) -> FitResult:
    ctx = ddp.setup(p.device)
    out_dir = Path(out_dir)
    ck_dir = out_dir / "checkpoints" / stage
    metrics_csv = Path(metrics_csv) if metrics_csv else out_dir / "metrics.csv"
    if p.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    n = len(dataset)
    if n == 0:
        raise ConfigError(f"stage {stage!r}: the training set is empty")
    batches0 = epoch_batches(n, p.batch_size, p.seed, 0, ctx.rank, ctx.world_size)
    steps_per_epoch = min(len(batches0), p.max_steps_per_epoch or len(batches0))
    signature = {**_signature(p, n, ctx.world_size, steps_per_epoch), **(identity or {})}

    cpu_layout(model.to(ctx.device))
    params_to_train = trainable(model) if trainable else [q for q in model.parameters() if q.requires_grad]
    # fused: one kernel for all parameters; on the tiny CPU models the per-tensor loop was ~20 % of a step
    # (measured: 95 -> 23 ms per keyframe step, 2.7 M parameters in 227 tensors)
    opt = torch.optim.AdamW(params_to_train, lr=p.lr, weight_decay=p.weight_decay,
                            fused=ctx.device.type in ("cpu", "cuda"))
    sched = make_scheduler(opt, p, steps_per_epoch)
    amp_dtype = resolve_amp(p.amp, ctx.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    prog = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0, "loss_count": 0,
            "samples": 0, "epoch_time": 0.0, "train_time": 0.0, "skipped": 0}
    history: list[dict[str, Any]] = []
    seed_everything(p.seed + 1000 * ctx.rank)
    resumed_from = None
    if ctx.is_main:
        ckpt.remove_stale_temporaries(ck_dir)
    found = ckpt.latest_checkpoint(ck_dir) if (p.resume and ctx.is_main) else None
    chosen = ddp.broadcast_object(ctx, str(found[0]) if found else None)
    if chosen:
        state = found[1] if found else ckpt.load_state(chosen)
        if state.get("signature") != signature:
            raise ConfigError(
                f"{chosen}: checkpoint belongs to a different run of stage {stage!r} "
                f"(saved {state.get('signature')}, now {signature}); use another run folder, or pass "
                "resume=False (--no-resume) to start this stage over")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        _match_layouts(opt)
        sched.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"][ctx.rank])
        prog.update(state["progress"])
        history = list(state["history"])
        resumed_from = chosen

    net = ddp.wrap(model, ctx, find_unused=p.ddp_find_unused)
    net.train()

    def save(tag: str) -> None:
        rngs = ddp.all_gather_object(ctx, ckpt.rng_state())
        if ctx.is_main:
            state = {"stage": stage, "signature": signature, "model": model.state_dict(),
                     "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "scaler": scaler.state_dict(), "rng": rngs, "progress": dict(prog),
                     "history": history, "params": p.to_dict(), "tag": tag}
            ckpt.save_checkpoint(ck_dir, prog["global_step"], state, keep=p.keep_checkpoints)
        ddp.barrier(ctx)

    try:
        for epoch in range(prog["epoch"], p.epochs):
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            batches = epoch_batches(n, p.batch_size, p.seed, epoch, ctx.rank, ctx.world_size)[:steps_per_epoch]
            start = prog["step_in_epoch"]
            # own generator: a DataLoader otherwise draws its worker base seed from the global torch RNG,
            # which would shift the dropout stream of a run resumed mid-epoch
            gen = torch.Generator().manual_seed(epoch_seed(p.seed, epoch))
            loader = DataLoader(dataset, batch_sampler=batches[start:], num_workers=p.num_workers,
                                collate_fn=collate, pin_memory=ctx.device.type == "cuda", generator=gen)
            bar = progress(loader, desc=f"{stage} {epoch + 1}/{p.epochs}", total=len(batches), initial=start,
                           disable=not ctx.is_main)
            t0 = time.perf_counter()
            for batch in bar:
                batch = to_device(batch, ctx.device)
                with torch.autocast(ctx.device.type, dtype=amp_dtype or torch.float32,
                                    enabled=amp_dtype is not None):
                    loss = loss_fn(net, batch)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                # gradients are all-reduced by now, so every rank takes the same skip decision
                gnorm = torch.nn.utils.clip_grad_norm_(params_to_train, p.grad_clip or float("inf"))
                if scaler.is_enabled():
                    scaler.step(opt)
                    scaler.update()
                elif torch.isfinite(gnorm):
                    opt.step()
                else:
                    prog["skipped"] += 1
                sched.step()
                bs = len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch[0])
                lv = float(loss.detach())
                if math.isfinite(lv):
                    prog["loss_sum"] += lv * bs
                    prog["loss_count"] += bs
                prog["samples"] += bs
                prog["step_in_epoch"] += 1
                prog["global_step"] += 1
                dt = time.perf_counter() - t0
                t0 = time.perf_counter()
                prog["epoch_time"] += dt
                prog["train_time"] += dt
                if ctx.is_main and hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{lv:.4f}", refresh=False)
                if (p.checkpoint_every and prog["global_step"] % p.checkpoint_every == 0
                        and prog["step_in_epoch"] < len(batches)):
                    save("step")
                    t0 = time.perf_counter()
                if on_step_end is not None:
                    on_step_end(prog["global_step"])
            if hasattr(bar, "close"):
                bar.close()

            row = _epoch_row(ctx, prog, epoch, opt)
            if evaluate is not None and ((epoch + 1) % max(1, p.val_every) == 0 or epoch + 1 == p.epochs):
                if ctx.is_main:
                    row.update(_validate(evaluate, model, ctx.device, amp_dtype))
                ddp.barrier(ctx)
            history.append(row)
            if ctx.is_main:
                write_metrics_csv(metrics_csv, stage, history)
                print(f"[{stage}] " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
            prog.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, loss_count=0, epoch_time=0.0)
            save("epoch")
        if resumed_from and ctx.is_main and history:
            write_metrics_csv(metrics_csv, stage, history)
    finally:
        ddp.teardown(ctx)
    model.eval()
    # ranks take equal steps of equal batches, so the run's throughput is world_size times one rank's
    return FitResult(model=model, history=history, train_time_s=prog["train_time"],
                     samples=prog["samples"] * ctx.world_size, resumed_from=resumed_from)


def _epoch_row(ctx: ddp.DistContext, prog: dict[str, Any], epoch: int, opt) -> dict[str, Any]:
    count = prog["loss_count"]
    loss = prog["loss_sum"] / count if count else float("nan")
    loss = ddp.mean_over_ranks(ctx, loss, count)
    steps = prog["step_in_epoch"]
    return {"epoch": epoch + 1, "loss": loss, "lr": opt.param_groups[0]["lr"], "steps": steps,
            "time_s": prog["epoch_time"], "samples_per_s": (count * ctx.world_size) / max(prog["epoch_time"], 1e-9),
            "skipped_steps": prog["skipped"]}


def _validate(evaluate, model, device, amp_dtype) -> dict[str, float]:
    # validation must not consume the training RNG streams, or resume after it would diverge
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad(), \
            torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        was = model.training
        model.eval()
        try:
            out = evaluate(model)
        finally:
            model.train(was)
    return {f"val_{k}": float(v) for k, v in out.items()}


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
