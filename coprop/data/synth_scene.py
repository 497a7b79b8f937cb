"""Scenes of the synthetic benchmark: what each category looks like, who sounds when, and the rendered frames.

A category is recognisable by shape + colour + texture, alike across clips (small size/colour jitter). A silent
object is drawn exactly like a sounding one: only the audio tells which object the masks must cover.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coprop.data.clip import avsbench_frame_times

# category -> (shape, RGB, texture, (half-width, half-height) as a fraction of the frame side)
LOOKS: dict[str, tuple[str, tuple[int, int, int], str, tuple[float, float]]] = {
    "bird": ("triangle", (235, 215, 45), "shade", (0.14, 0.14)),
    "car": ("rect", (205, 35, 45), "hstripes", (0.22, 0.11)),
    "dog": ("roundrect", (150, 95, 55), "dots", (0.17, 0.15)),
    "drum": ("ellipse", (45, 85, 215), "rings", (0.16, 0.16)),
    "lawnmower": ("hexagon", (60, 165, 70), "diag", (0.17, 0.14)),
    "piano": ("rect", (35, 35, 45), "keys", (0.23, 0.13)),
    "siren": ("diamond", (55, 200, 215), "checker", (0.16, 0.16)),
    "violin": ("ellipse", (225, 120, 35), "vstripes", (0.12, 0.21)),
}
CATEGORIES: list[str] = sorted(LOOKS)


@dataclass
class SceneObject:
    category: str
    color: np.ndarray          # float32 [3]
    half: tuple[float, float]  # half-size, fraction of the frame side
    start: np.ndarray          # centre at t=0, fraction of the frame
    velocity: np.ndarray       # frame sides per second
    wobble: np.ndarray         # amplitude, frequency, phase of a small sideways sway


@dataclass
class ClipPlan:
    """Everything random about one clip, decided before anything is rendered or synthesised."""

    num_frames: int
    objects: list[SceneObject]
    events: list[tuple[float, float, list[int]]]  # (t0, t1, indices of sounding objects), covering [0, duration)
    background: tuple[np.ndarray, np.ndarray, float] = field(default=None)  # two colours, gradient angle

    @property
    def duration(self) -> float:
        return float(self.num_frames)

    @property
    def frame_times(self) -> np.ndarray:
        return avsbench_frame_times(self.num_frames)

    def sounding_at(self, t: float) -> list[int]:
        for t0, t1, who in self.events:
            if t0 <= t < t1:
                return who
        return self.events[-1][2]

    def sounding_per_frame(self) -> list[list[int]]:
        return [sorted(self.sounding_at(t)) for t in self.frame_times]

    def spans(self, obj: int) -> list[tuple[float, float]]:
        return [(t0, t1) for t0, t1, who in self.events if obj in who]


def _new_object(category: str, rng: np.random.Generator) -> SceneObject:
    _, rgb, _, (hx, hy) = LOOKS[category]
    s = rng.uniform(0.85, 1.15)
    # slow drift (<= 5 % of the frame per second): consecutive masks of one object keep IoU > 0.5, so the
    # binary GT rule sees a change only when the sounding object changes
    speed, angle = rng.uniform(0.01, 0.05), rng.uniform(0, 2 * np.pi)
    return SceneObject(
        category=category,
        color=np.clip(np.asarray(rgb, np.float32) + rng.uniform(-12, 12, 3), 0, 255).astype(np.float32),
        half=(hx * s * rng.uniform(0.92, 1.08), hy * s * rng.uniform(0.92, 1.08)),
        start=rng.uniform(0.25, 0.75, 2),
        velocity=np.array([np.cos(angle), np.sin(angle)]) * speed,
        wobble=np.array([rng.uniform(0.0, 0.01), rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)]),
    )


def _spread(objects: list[SceneObject], rng: np.random.Generator, min_dist: float = 0.32) -> None:
    """Re-draw start positions until objects start apart (occlusions still happen as they drift, but rarely)."""
    for _ in range(50):
        pts = [o.start for o in objects]
        if all(np.linalg.norm(a - b) >= min_dist for i, a in enumerate(pts) for b in pts[i + 1:]):
            return
        for o in objects:
            o.start = rng.uniform(0.2, 0.8, 2)


def _change_times(duration: float, rate: float | None, counts: tuple[float, ...], rng) -> list[float]:
    """Random instants (never snapped to seconds) at least 0.4 s apart and 0.3 s from the clip edges."""
    k = rng.poisson(rate * duration) if rate else rng.choice(len(counts), p=counts)
    times: list[float] = []
    for _ in range(50 * max(1, k)):
        if len(times) == k:
            break
        t = rng.uniform(0.3, duration - 0.3)
        if all(abs(t - u) >= 0.4 for u in times):
            times.append(t)
    return sorted(times)


def _next_state(n_obj: int, prev: list[int] | None, allow_none: bool, rng) -> list[int]:
    """One object (most often), two together, or none; always different from the previous state."""
    while True:
        r = rng.random()
        if allow_none and r < 0.15:
            state: list[int] = []
        elif r < (0.35 if allow_none else 0.4) and n_obj >= 2:
            state = sorted(rng.choice(n_obj, 2, replace=False).tolist())
        else:
            state = [int(rng.integers(n_obj))]
        if state != prev:
            return state


def plan_clip(kind: str, num_frames: int, rng: np.random.Generator, category: str | None = None,
              change_rate: float | None = None) -> ClipPlan:
    """``kind`` 'single': one object sounds the whole clip (S4 / v1s); 'multi': the sounding object(s) change
    at random instants (MS3 / v1m / v2 / long). ``category`` fixes the sounding category of a 'single' clip;
    ``change_rate`` (changes per second, Poisson) replaces the 5-frame count distribution for long clips.
    """
    duration = float(num_frames)
    if kind == "single":
        n_obj = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        cats = [category or CATEGORIES[int(rng.integers(len(CATEGORIES)))]]
        cats += list(rng.choice([c for c in CATEGORIES if c != cats[0]], n_obj - 1, replace=False))
        events = [(0.0, duration, [0])]
    elif kind == "multi":
        n_obj = int(rng.choice([2, 3], p=[0.55, 0.45]))
        cats = list(rng.choice(CATEGORIES, n_obj, replace=False))
        times = _change_times(duration, change_rate, (0.35, 0.4, 0.25), rng)
        bounds = [0.0] + times + [duration]
        events, prev = [], None
        for t0, t1 in zip(bounds[:-1], bounds[1:]):
            prev = _next_state(n_obj, prev, allow_none=bool(times), rng=rng)
            events.append((t0, t1, prev))
    else:
        raise ValueError(f"unknown clip kind {kind!r} (expected 'single' or 'multi')")
    objects = [_new_object(str(c), rng) for c in cats]
    _spread(objects, rng)
    order = rng.permutation(n_obj)  # draw order: anyone may occlude anyone, sounding or not
    remap = {int(old): new for new, old in enumerate(order)}
    objects = [objects[i] for i in order]
    events = [(t0, t1, sorted(remap[i] for i in who)) for t0, t1, who in events]
    bg = (rng.uniform(60, 190, 3), rng.uniform(60, 190, 3), float(rng.uniform(0, 2 * np.pi)))
    return ClipPlan(num_frames=num_frames, objects=objects, events=events, background=bg)


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Bounce a free trajectory inside [lo, hi] (triangle-wave folding)."""
    span = hi - lo
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _shape(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    if name == "ellipse":
        return u * u + v * v <= 1.0
    if name == "rect":
        return (au <= 1.0) & (av <= 1.0)
    if name == "roundrect":
        return au ** 4 + av ** 4 <= 1.0
    if name == "triangle":
        return (v <= 1.0) & (au <= (v + 1.0) / 2.0)
    if name == "diamond":
        return au + av <= 1.0
    if name == "hexagon":
        return (av <= 0.87) & (au * 0.87 + av * 0.5 <= 0.87)
    raise ValueError(name)


def _texture(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Weight in [0,1] of the darker (or, for keys, white) second colour, in object coordinates."""
    if name == "vstripes":
        return (np.sin(np.pi * 4 * u) > 0).astype(np.float32)
    if name == "hstripes":
        return (np.sin(np.pi * 3 * v) > 0).astype(np.float32)
    if name == "rings":
        return (np.sin(np.pi * 5 * np.sqrt(u * u + v * v)) > 0).astype(np.float32)
    if name == "checker":
        return ((np.floor(u * 2.5) + np.floor(v * 2.5)) % 2).astype(np.float32)
    if name == "dots":
        return ((np.mod(u * 2.5, 1) - 0.5) ** 2 + (np.mod(v * 2.5, 1) - 0.5) ** 2 < 0.07).astype(np.float32)
    if name == "diag":
        return (np.sin(np.pi * 3 * (u + v)) > 0).astype(np.float32)
    if name == "keys":
        return ((np.mod(u * 5, 1) < 0.75) & (v > -0.2)).astype(np.float32)
    if name == "shade":
        return np.clip(0.5 * (u * u + (v - 0.3) ** 2), 0, 1).astype(np.float32)
    raise ValueError(name)


def render(plan: ClipPlan, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 [T,S,S,3] and instance maps int64 [T,S,S] (0 = background, i+1 = object i, visible part)."""
    T, S = plan.num_frames, size
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    c1, c2, angle = plan.background
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    bg = c1 * (1 - ramp[..., None]) + c2 * ramp[..., None]
    # static clutter: a few soft blobs so the background is not a clean gradient
    for _ in range(4):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.25)
        w = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        bg = bg * (1 - 0.35 * w) + rng.uniform(40, 220, 3) * 0.35 * w
    bg += rng.normal(0, 4, (S, S, 1))
    frames = np.empty((T, S, S, 3), np.uint8)
    inst = np.zeros((T, S, S), np.int64)
    times = plan.frame_times
    for k, t in enumerate(times):
        img = bg.astype(np.float32).copy()
        for i, ob in enumerate(plan.objects):
            shape, _, tex, _ = LOOKS[ob.category]
            hx, hy = ob.half
            amp, freq, phase = ob.wobble
            pos = ob.start + ob.velocity * t
            cx = float(_reflect(np.asarray(pos[0]), hx, 1 - hx)) + amp * np.sin(2 * np.pi * freq * t + phase)
            cy = float(_reflect(np.asarray(pos[1]), hy, 1 - hy))
            u, v = (xx - cx) / hx, (yy - cy) / hy
            m = _shape(shape, u, v)
            w = _texture(tex, u, v)[..., None]
            second = np.full(3, 245.0, np.float32) if tex == "keys" else ob.color * 0.5
            img = np.where(m[..., None], ob.color * (1 - w) + second * w, img)
            inst[k][m] = i + 1
        img += rng.normal(0, 2.0, img.shape)
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
    return frames, inst
