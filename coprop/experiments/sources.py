"""Control-point sources fitted on a suite's training data (cosine, learned detector, RCPG with an LLM),
cached per training seed and data so a notebook re-run does not refit them."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from coprop.experiments.clips import Data
from coprop.experiments.suite import Suite


def _source_file(suite_dir: Path, name: str, data: Data) -> Path:
    return Path(suite_dir) / "sources" / f"{name}-{data.key()}.pt"


def cached_source(suite_dir: Path | None, name: str, data: Data):
    """A control-point source fitted earlier on ``data``'s training clips for this seed, or None."""
    f = None if suite_dir is None else _source_file(suite_dir, name, data)
    if f is None or not f.is_file():
        return None
    return torch.load(f, weights_only=False)   # written by fit_sources below, never downloaded


def fitted_in_run(run_dir: str | Path, seed: int, data: Data, names: Iterable[str]) -> dict[str, Any]:
    """name -> the source ``coprop demo`` (or a notebook) fitted for training seed ``seed`` on ``data``'s training
    clips under ``run_dir``/seed<seed>/sources; names not fitted there are left out."""
    from coprop.experiments.settings import resolve_path

    found = {name: cached_source(resolve_path(run_dir) / f"seed{seed}", name, data) for name in names}
    return {name: src for name, src in found.items() if src is not None}


def fit_sources(suite: Suite, data: Data, names: Iterable[str], llm: dict[str, str] | None = None,
                echo: Callable = print, train: list | None = None) -> dict[str, Any]:
    """Fit the control-point sources a set of methods needs (cached per suite seed and data);
    RCPG names ('rcpg:1-step', ...) need an LLM and are skipped without one. ``train``: ``data``'s training
    clips when the caller has them already (else they are read when a source must be fitted)."""
    from coprop.controlpoints.detectors import ControlPointSource, get_source
    from coprop.io import atomic_path

    for name in names:
        if name in suite.sources:
            continue
        if name.startswith("rcpg:") and not (llm or {}).get("backend"):
            continue   # the table row says NO_LLM
        cacheable = name in ("learned", "cosine")
        if cacheable and (src := cached_source(suite.path, name, data)) is not None:
            suite.sources[name] = src
            continue
        if name.startswith("rcpg:"):
            kw = {"model_path": llm.get("model", "")} if llm["backend"] == "local" else \
                {"base_url": llm.get("url", ""), "model": llm.get("model", "")}
            src = get_source("rcpg", backend=llm["backend"], variant=name.split(":", 1)[1], **kw)
        elif name == "learned":
            src = get_source("learned", seed=suite.seed)
        else:
            src = get_source(name)
        if type(src).fit is ControlPointSource.fit:   # learns nothing (GT oracle): reading the training clips
            suite.sources[name] = src                   # to hand them to a no-op cost 20 s per seed (measured)
            continue
        train = data.split("train") if train is None else train
        t0 = time.perf_counter()
        suite.sources[name] = src.fit(train)
        echo(f"  control points: fitted {name} in {time.perf_counter() - t0:.1f} s")
        if cacheable:
            f = _source_file(suite.path, name, data)
            f.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(f) as tmp:
                torch.save(src, tmp)
    return suite.sources
