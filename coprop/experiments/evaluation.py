"""An ``Evaluation``: the predictions of many methods on the same test clips for one or more training seeds,
and their scores as mean and std over seeds."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from coprop.errors import ConfigError
from coprop.experiments.clips import Data
from coprop.experiments.methods import ClipResult, Method, run_method
from coprop.experiments.scoring import score
from coprop.experiments.settings import pick_device, resolve_path
from coprop.experiments.sources import fit_sources
from coprop.experiments.suite import Suite
from coprop.progress import progress


DATASET_OF = {"s4": "S4", "ms3": "M3", "avss": "AVSS"}


@dataclass
class Evaluation:
    """Predictions of many methods on the same test clips, for one or more training seeds."""

    data: Data
    clips: list
    seeds: list[int]
    suites: dict[int, Suite]
    results: dict[int, dict[str, list[ClipResult]]] = field(default_factory=dict)
    llm: dict[str, str] = field(default_factory=dict)
    cache: Path | None = None
    k: int = 1

    @property
    def has_llm(self) -> bool:
        return bool(self.llm.get("backend"))

    @property
    def data_label(self) -> str:
        kind = f"synthetic {self.data.subset.upper()}-style ({self.data.synthetic_preset})" if self.data.synthetic \
            else f"AVSBench {self.data.subset.upper()}"
        return f"{kind}, test split, {len(self.clips)} clips"

    def available(self, m: Method) -> bool:
        return not (m.source.startswith("rcpg:") and not self.has_llm)

    def seeds_of(self, m: Method) -> list[int]:
        """The training seeds whose predictions of ``m`` are loaded (a table row's seeds)."""
        return [s for s in self.seeds if m.key in self.results.get(s, {})]

    def run(self, methods: Iterable[Method], echo: Callable = print, seeds: Sequence[int] | None = None
            ) -> "Evaluation":
        """Predict (or load the cached predictions of) ``methods`` for ``seeds`` (default: all of the
        evaluation's); a seed whose suite lacks a method's model (e.g. the text-guided variant trained for
        fewer seeds) is skipped for that method."""
        methods = [m for m in methods if self.available(m)]
        for seed in (self.seeds if seeds is None else seeds):
            suite = self.suites[seed]
            mine = [m for m in methods if suite.has(m)]
            needed = {m.source for m in mine if m.kind in ("coprop", "prop_gt")} - {""}
            needed |= {"learned"} if any(m.keyframe == "text" for m in mine) else set()
            fit_sources(suite, self.data, sorted(needed), self.llm, echo)
            store = self.results.setdefault(seed, {})
            for m in progress(mine, desc=f"methods (seed {seed})", unit="method"):
                if m.key in store:
                    continue
                t0 = time.perf_counter()
                store[m.key] = run_method(m, suite, self.clips, self.method_dir(m, seed))
                echo(f"  {m.label}: {len(self.clips)} clips in {time.perf_counter() - t0:.1f} s")
        return self

    def prediction_dir(self, seed: int) -> Path | None:
        """Where the predictions of training seed ``seed`` are cached (one folder per method), None: no cache."""
        return None if self.cache is None else self.cache / self.data.key() / f"seed{seed}"

    def method_dir(self, m: Method, seed: int) -> Path | None:
        """``m``'s cached predictions for ``seed``: ``<prediction_dir>/<method key>-<stamp of the weights it uses>``
        (retraining one of its models starts a new folder; training another model does not)."""
        folder = self.prediction_dir(seed)
        suite = self.suites[seed]
        return None if folder is None else folder / f"{m.key}-{suite.stamp(suite.needs(m))}"

    def scores(self, m: Method, frames: str = "all") -> dict[str, float]:
        """Mean and std over seeds of J, F (in %) and Alignment Rates (in %)."""
        per_seed = [score(self.results[s][m.key], self.clips, frames, self.k,
                          num_classes=self.suites[s].cfg.num_classes) for s in self.seeds_of(m)]
        out: dict[str, float] = {}
        for key in ("J", "F", "AR all", "AR near", "AR far"):
            vals = np.array([100.0 * d[key] for d in per_seed], float)
            out[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
            out[f"{key} std"] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else float("nan")
        out["frames"] = per_seed[0]["frames"]
        out["frames near"] = per_seed[0]["frames near"]
        return out

    def subset(self, keep: Callable) -> "Evaluation":
        """The same predictions restricted to the clips for which ``keep(clip)`` is true (e.g. MOC-style)."""
        idx = [i for i, c in enumerate(self.clips) if keep(c)]
        res = {s: {k: [v[i] for i in idx] for k, v in d.items()} for s, d in self.results.items()}
        return replace(self, clips=[self.clips[i] for i in idx], results=res)

    def result(self, m: Method, clip_name: str, seed: int | None = None) -> ClipResult:
        seed = self.seeds[0] if seed is None else seed
        return next(r for r in self.results[seed][m.key] if r.name == clip_name)

    def control_points(self, m: Method, seed: int | None = None) -> dict[str, list[int]]:
        seed = self.seeds[0] if seed is None else seed
        return {r.name: r.control_points for r in self.results[seed][m.key]}

    def seconds_per_frame(self, m: Method) -> float:
        seeds = self.seeds_of(m)
        res = [r for s in seeds for r in self.results[s][m.key]]
        return sum(r.seconds for r in res) / max(1, sum(c.num_frames for c in self.clips) * len(seeds))


def evaluation(run_dir: str | Path, data: Data, seeds: Sequence[int], max_clips: int = -1,
               llm: dict[str, str] | None = None, k: int = 1, device: str = "cpu",
               clip_filter: Callable | None = None) -> Evaluation:
    """Load the suites of ``seeds`` (already trained) and the test clips; predictions are cached in the run folder."""
    clips = data.split("test")
    if clip_filter is not None:
        clips = [c for c in clips if clip_filter(c)]
    if max_clips is not None and max_clips >= 0:
        clips = clips[:max_clips]
    if not clips:
        raise ConfigError(f"no test clips to evaluate in {data.root} ({data.subset})")
    run_dir = resolve_path(run_dir)
    suites = {s: Suite.load(run_dir, s, pick_device(device)) for s in seeds}
    return Evaluation(data, clips, list(seeds), suites, llm=dict(llm or {}), cache=run_dir / "predictions", k=k)
