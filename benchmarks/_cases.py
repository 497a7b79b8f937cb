"""What the benchmarks run: model construction with random weights, input pools and the measured loops.

Each ``*_case(probe, **kwargs)`` function runs inside a fresh worker process (see ``_harness.run_isolated``)
and returns the measured numbers as a dict; the harness adds peak memory and the status.
"""
from __future__ import annotations

import contextlib
import inspect
import time
from typing import Any

import torch

POOL = 8  # distinct random frames/audio examples cycled through: constant input memory, no generator cost


# --------------------------------------------------------------------------------------------- setup
def seed_all(seed: int) -> None:
    torch.manual_seed(seed)


def model_config(config: str, size: int | None, num_classes: int = 1):
    """A named config with random initial weights asked for explicitly (no weight files are read)."""
    from coprop.models.config import get_config

    overrides: dict[str, Any] = {"num_classes": num_classes, "pretrained": False,
                                 "backbone_weights": None, "audio_weights": None}
    if size:
        overrides["image_size"] = size
    return get_config(config, **overrides)


def build(which: str, cfg, device: str, vggish: torch.nn.Module | None = None) -> torch.nn.Module:
    """``keyframe`` | ``propagator`` | ``baseline`` model of ``cfg`` in eval mode on ``device``; ``vggish``: a
    built VGGish the propagator shares (as a pipeline does) instead of holding its own."""
    if which == "keyframe":
        from coprop.models.keyframe import KeyframeProcessor as cls
    elif which == "propagator":
        from coprop.models.propagators import build_propagator  # 'paper': R50-AOTL + AudioInsert

        return build_propagator(cfg, allow_random=True, vggish=vggish).to(device).eval()
    elif which == "baseline":
        from coprop.models.simultaneous import SimultaneousBaseline as cls
    else:
        raise ValueError(f"unknown model {which!r}")
    kwargs = {"allow_random": True} if "allow_random" in inspect.signature(cls).parameters else {}
    return cls(cfg, **kwargs).to(device).eval()


def build_pair(cfg, device: str, share_vggish: bool = True) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(keyframe model, propagator) of ``cfg``; with ``share_vggish`` the propagator uses the keyframe model's
    VGGish, as a CoProp pipeline does (random weights differ per copy, so CoProp could not merge them later)."""
    keyframe = build("keyframe", cfg, device)
    shared = getattr(getattr(keyframe, "audio_encoder", None), "vggish", None) if share_vggish else None
    return keyframe, build("propagator", cfg, device, vggish=shared)


def autocast(device: str, dtype: str):
    """bf16 autocast on the device, or a no-op context for fp32."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    if dtype != "bf16":
        raise ValueError(f"dtype must be fp32 or bf16, got {dtype!r}")
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


class InputPool:
    """A few random normalised frames and log-mel examples, cycled to make a video of any length."""

    def __init__(self, size: int, batch: int, device: str, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.frames = torch.randn(POOL, batch, 3, size, size, generator=g).to(device)
        self.audio = torch.randn(POOL, batch, 1, 96, 64, generator=g).to(device)
        # what a video reader hands the streaming pipeline: uint8 RGB frames at the model size, on the CPU
        self.frames_u8 = torch.randint(0, 256, (POOL, batch, size, size, 3), dtype=torch.uint8, generator=g)

    def frame(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.frames[t % POOL], self.audio[t % POOL]

    def clip(self, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All T frames at once, ``[B,T,3,S,S]`` and ``[B,T,1,96,64]`` (what a simultaneous model needs)."""
        idx = torch.arange(T, device=self.frames.device) % POOL
        return self.frames[idx].transpose(0, 1).contiguous(), self.audio[idx].transpose(0, 1).contiguous()


def control_points(T: int, segment_len: int) -> list[int]:
    """A control point every ``segment_len`` frames (c[0] = 1): one keyframe per audio portion."""
    return [1 if t % max(segment_len, 1) == 0 else 0 for t in range(T)]


def keyframe_mask(logits: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Keyframe logits [B,K,S,S] -> (object-id mask [B,S,S] long, number of objects)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long(), 1
    return logits.argmax(1), logits.shape[1] - 1


# --------------------------------------------------------------------------------------------- loops
def pipeline(keyframe: torch.nn.Module, propagator: torch.nn.Module):
    from coprop.pipeline import CoProp

    return CoProp(keyframe, propagator)


def run_pipeline_streams(pipe, pool: InputPool, T: int, cps: list[int]) -> float:
    """Co-Prop's streaming API (``CoProp.stream().push``), one stream per video of the pool's batch, pushed
    round-robin: uint8 frame in, logits at the frame's size out (prepare, keyframe on control points,
    propagator step otherwise, resize, copy to CPU). Keeps nothing of past frames. Returns a checksum."""
    B = pool.frames_u8.shape[1]
    streams = [pipe.stream(cps) for _ in range(B)]
    total = 0.0
    for t in range(T):
        for b, stream in enumerate(streams):
            logits = stream.push(pool.frames_u8[t % POOL, b], pool.audio[t % POOL, b])
            total += float(logits[0, 0, :8].sum())
    return total


def run_lockstep(keyframe: torch.nn.Module, propagator: torch.nn.Module, pool: InputPool, T: int,
                 cps: list[int]) -> float:
    """B videos in one batch through the models directly (shared control points): keyframe model on control
    points, one propagator step on every other frame. Shows what batching buys beyond the one-video API."""
    state, total = None, 0.0
    for t in range(T):
        frame, audio = pool.frame(t)
        if cps[t] or state is None:
            logits = keyframe(frame, audio, None)
            mask, n_obj = keyframe_mask(logits)
            state = propagator.start(frame, audio, mask, n_obj)
        else:
            logits, state = propagator.step(frame, audio, state)
        total += float(logits.flatten(1)[:, :8].sum())  # forces the frame to finish (and syncs a GPU)
    return total


# --------------------------------------------------------------------------------------------- memory cases
def baseline_memory_case(probe, config: str, T: int, size: int, dtype: str = "fp32", seed: int = 0,
                         num_classes: int = 1) -> dict[str, Any]:
    """(a) the simultaneous baseline decodes all T frames in one forward pass."""
    seed_all(seed)
    cfg = model_config(config, size, num_classes)
    model = build("baseline", cfg, probe.device)
    pool = InputPool(cfg.image_size, 1, probe.device, seed)
    with torch.inference_mode(), autocast(probe.device, dtype):
        warm_f, warm_a = pool.clip(2)
        model(warm_f, warm_a)
        del warm_f, warm_a
        probe.start()
        with probe.timed() as t:
            frames, audio = pool.clip(T)  # the method needs every frame at once: its input counts
            logits = model(frames, audio)
            float(logits.flatten()[:16].sum())
    return {"ms_per_frame": 1000.0 * t[0] / T, "seconds": t[0]}


def coprop_memory_case(probe, config: str, T: int, size: int, dtype: str = "fp32", seed: int = 0,
                       num_classes: int = 1, segment_len: int = 10, share_vggish: bool = True) -> dict[str, Any]:
    """(b) Co-Prop streaming over T frames (keyframe model on control points + one step per frame).
    ``share_vggish=False`` gives the propagator its own VGGish (the layout before issue 10: +289 MB in `paper`)."""
    seed_all(seed)
    cfg = model_config(config, size, num_classes)
    pipe = pipeline(*build_pair(cfg, probe.device, share_vggish))
    pool = InputPool(cfg.image_size, 1, probe.device, seed)
    cps = control_points(T, segment_len)
    with torch.inference_mode(), autocast(probe.device, dtype):
        run_pipeline_streams(pipe, pool, 3, control_points(3, 2))  # warm-up
        probe.start()
        with probe.timed() as t:
            run_pipeline_streams(pipe, pool, T, cps)
    return {"ms_per_frame": 1000.0 * t[0] / T, "seconds": t[0], "keyframes": sum(cps)}


# --------------------------------------------------------------------------------------------- throughput
def _repeat(probe, fn, min_seconds: float, min_iters: int = 2, max_iters: int = 200) -> tuple[int, float]:
    """Run ``fn`` until ``min_seconds`` have passed (at least ``min_iters`` times); returns (iters, seconds)."""
    n, t0 = 0, time.perf_counter()
    probe.sync()
    while n < max_iters and (n < min_iters or time.perf_counter() - t0 < min_seconds):
        fn()
        n += 1
    probe.sync()
    return n, time.perf_counter() - t0


def keyframe_throughput_case(probe, config: str, batch: int, dtype: str, size: int | None = None, seed: int = 0,
                             min_seconds: float = 3.0) -> dict[str, Any]:
    seed_all(seed)
    cfg = model_config(config, size)
    model = build("keyframe", cfg, probe.device)
    pool = InputPool(cfg.image_size, batch, probe.device, seed)
    frame, audio = pool.frame(0)
    with torch.inference_mode(), autocast(probe.device, dtype):
        model(frame, audio, None)
        probe.start()
        n, s = _repeat(probe, lambda: model(frame, audio, None), min_seconds)
    return {"fps": batch * n / s, "iters": n, "size": cfg.image_size}


def step_throughput_case(probe, config: str, batch: int, dtype: str, size: int | None = None, seed: int = 0,
                         min_seconds: float = 3.0) -> dict[str, Any]:
    """One propagator step with a full memory (steady state of a long video)."""
    seed_all(seed)
    cfg = model_config(config, size)
    propagator = build("propagator", cfg, probe.device)
    pool = InputPool(cfg.image_size, batch, probe.device, seed)
    frame, audio = pool.frame(0)
    mask = (torch.rand(batch, cfg.image_size, cfg.image_size, device=probe.device) > 0.5).long()
    fill = (cfg.memory_capacity + 1) * max(cfg.long_term_gap_test, 1) + 1
    with torch.inference_mode(), autocast(probe.device, dtype):
        state = propagator.start(frame, audio, mask, 1)
        for t in range(1, fill):  # fill the memory so the timed steps attend to every slot
            _, state = propagator.step(*pool.frame(t), state)
        box = [state, fill]

        def one():
            f, a = pool.frame(box[1])
            _, box[0] = propagator.step(f, a, box[0])
            box[1] += 1

        probe.start()
        n, s = _repeat(probe, one, min_seconds)
    return {"fps": batch * n / s, "iters": n, "size": cfg.image_size}


def pipeline_throughput_case(probe, config: str, batch: int, dtype: str, size: int | None = None, seed: int = 0,
                             clip_len: int = 30, segment_len: int = 10, min_seconds: float = 3.0,
                             lockstep: bool = False) -> dict[str, Any]:
    """Whole Co-Prop streaming pipeline over ``clip_len``-frame clips with a control point every
    ``segment_len`` frames: through ``CoProp.stream`` (B streams round-robin), or ``lockstep`` (B videos
    batched through the models). fps counts every frame of every video."""
    seed_all(seed)
    cfg = model_config(config, size)
    keyframe, propagator = build_pair(cfg, probe.device)
    pool = InputPool(cfg.image_size, batch, probe.device, seed)
    cps = control_points(clip_len, segment_len)
    if lockstep:
        def one_clip(T, c):
            return run_lockstep(keyframe, propagator, pool, T, c)
    else:
        pipe = pipeline(keyframe, propagator)

        def one_clip(T, c):
            return run_pipeline_streams(pipe, pool, T, c)
    with torch.inference_mode(), autocast(probe.device, dtype):
        one_clip(3, control_points(3, 2))
        probe.start()
        n, s = _repeat(probe, lambda: one_clip(clip_len, cps), min_seconds, min_iters=1)
    return {"fps": batch * clip_len * n / s, "iters": n, "size": cfg.image_size}


def pipeline_lockstep_throughput_case(probe, **kwargs) -> dict[str, Any]:
    return pipeline_throughput_case(probe, lockstep=True, **kwargs)


def _train_steps(probe, step: torch.nn.Module, batch: dict[str, torch.Tensor], dtype: str, min_seconds: float
                 ) -> tuple[int, float]:
    """Time ``loss = step(batch); backward; AdamW`` -- what coprop.train.loop.fit does per batch."""
    opt = torch.optim.AdamW([p for p in step.parameters() if p.requires_grad], lr=1e-4)

    def one():
        opt.zero_grad(set_to_none=True)
        with autocast(probe.device, dtype):
            loss = step(batch)
        loss.backward()
        opt.step()

    one()
    probe.start()
    return _repeat(probe, one, min_seconds)


def keyframe_train_case(probe, config: str, batch: int, dtype: str, size: int | None = None, seed: int = 0,
                        min_seconds: float = 3.0) -> dict[str, Any]:
    """Keyframe Processor training through coprop.train.tasks.KeyframeStep, frames per second."""
    from coprop.train.tasks import KeyframeStep

    seed_all(seed)
    cfg = model_config(config, size)
    step = KeyframeStep(build("keyframe", cfg, probe.device).train(), cfg.num_classes)
    pool = InputPool(cfg.image_size, batch, probe.device, seed)
    frame, audio = pool.frame(0)
    S = cfg.image_size
    data = {"image": frame, "audio": audio, "mask": (torch.rand(batch, S, S, device=probe.device) > 0.5).long()}
    n, s = _train_steps(probe, step, data, dtype, min_seconds)
    return {"fps": batch * n / s, "iters": n, "size": S}


def propagator_train_case(probe, config: str, batch: int, dtype: str, size: int | None = None, seed: int = 0,
                          clip_len: int = 5, min_seconds: float = 3.0) -> dict[str, Any]:
    """Propagator training on ``clip_len``-frame clips through coprop.train.tasks.PropagatorStep, clips/s."""
    from coprop.train.tasks import PropagatorStep

    seed_all(seed)
    cfg = model_config(config, size)
    step = PropagatorStep(build("propagator", cfg, probe.device).train(), "binary")
    pool = InputPool(cfg.image_size, batch, probe.device, seed)
    frames, audio = pool.clip(clip_len)
    S, dev = cfg.image_size, probe.device
    masks = (torch.rand(batch, clip_len, S, S, device=dev) > 0.5).long()
    data = {"frames": frames, "audio": audio, "first_mask": masks[:, 0], "targets": masks[:, 1:],
            "weight": torch.ones(batch, clip_len - 1, dtype=torch.bool, device=dev),
            "num_objects": torch.ones(batch, dtype=torch.long)}
    n, s = _train_steps(probe, step, data, dtype, min_seconds)
    return {"fps": batch * n / s, "iters": n, "size": S, "clip_len": clip_len}


# --------------------------------------------------------------------------------------------- profiling
class ModuleClock:
    """Inclusive wall time per top-level submodule (forward pre/post hooks, device synchronised)."""

    def __init__(self, probe, models: dict[str, torch.nn.Module]):
        self.probe, self.ms, self.calls, self._t0, self._handles = probe, {}, {}, {}, []
        for prefix, model in models.items():
            for name, child in model.named_children():
                # containers are iterated, never called: time their members under the container's name
                members = list(child.children()) if isinstance(child, (torch.nn.ModuleList, torch.nn.ModuleDict)) \
                    else [child]
                for m in members:
                    self._handles.append(m.register_forward_pre_hook(self._pre(f"{prefix}.{name}")))
                    self._handles.append(m.register_forward_hook(self._post(f"{prefix}.{name}")))

    def _pre(self, key):
        def hook(module, args):
            self.probe.sync()
            self._t0.setdefault(key, []).append(time.perf_counter())
        return hook

    def _post(self, key):
        def hook(module, args, output):
            self.probe.sync()
            self.ms[key] = self.ms.get(key, 0.0) + 1000.0 * (time.perf_counter() - self._t0[key].pop())
            self.calls[key] = self.calls.get(key, 0) + 1
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def profile_case(probe, component: str, config: str, batch: int = 1, dtype: str = "fp32", size: int | None = None,
                 seed: int = 0, frames: int = 20, segment_len: int = 10, top_ops: int = 12) -> dict[str, Any]:
    """Where the time of ``component`` ('propagator_step' | 'pipeline' | 'keyframe') goes, per frame:
    inclusive ms per top-level submodule, the rest (glue outside modules), and torch.profiler's top operators."""
    from torch.profiler import ProfilerActivity, profile

    seed_all(seed)
    cfg = model_config(config, size)
    keyframe, propagator = build_pair(cfg, probe.device)
    pool = InputPool(cfg.image_size, batch, probe.device, seed)
    if component == "pipeline":
        pipe = pipeline(keyframe, propagator)
        cps = control_points(frames, segment_len)

        def work():
            run_pipeline_streams(pipe, pool, frames, cps)
    elif component == "propagator_step":
        mask = (torch.rand(batch, cfg.image_size, cfg.image_size, device=probe.device) > 0.5).long()
        box: list = []

        def work():
            state = box[0] if box else propagator.start(*pool.frame(0), mask, 1)
            for t in range(frames):
                _, state = propagator.step(*pool.frame(t + 1), state)
            box[:] = [state]
    elif component == "keyframe":
        def work():
            for t in range(frames):
                keyframe(*pool.frame(t), None)
    else:
        raise ValueError(f"cannot profile component {component!r}")
    with torch.inference_mode(), autocast(probe.device, dtype):
        work()  # warm-up (and, for the step, fills the memory bank)
        clock = ModuleClock(probe, {"keyframe": keyframe, "propagator": propagator})
        probe.start()
        with probe.timed() as t:
            work()
        clock.remove()
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if probe.cuda else [])
        with profile(activities=acts) as prof:
            work()
    n = frames * batch
    total = 1000.0 * t[0] / n
    modules = sorted(((k, v / n) for k, v in clock.ms.items()), key=lambda kv: -kv[1])
    glue = total - sum(v for _, v in modules)
    sort_key = "self_cuda_time_total" if probe.cuda else "self_cpu_time_total"
    return {"ms_per_frame": total, "modules_ms_per_frame": modules + [("(outside modules)", glue)],
            "ops_table": prof.key_averages().table(sort_by=sort_key, row_limit=top_ops)}
