"""The control-point source interface and the registry of sources by name (paper §3.2; DESIGN.md §1).

Every source turns a Clip into its T-long 0/1 list (c[0] = 1). The implementations (detectors.py: 'gt',
'cosine', 'learned'; rcpg.py: 'rcpg') import this module; this module names them as 'module:Class' strings
resolved on first use, so the base never imports an implementation (no import circle, and the LLM stack is not
loaded for an offline source).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from pkgutil import resolve_name
from typing import Iterable, Sequence

from coprop.data.clip import Clip
from coprop.errors import ConfigError

# name -> the class implementing it; get_source imports the module when the name is first asked for
REGISTRY = {
    "gt": "coprop.controlpoints.detectors:GTSource",
    "cosine": "coprop.controlpoints.detectors:CosineSource",
    "learned": "coprop.controlpoints.detectors:LearnedSource",
    "rcpg": "coprop.controlpoints.rcpg:RCPGSource",
}
SOURCES = tuple(REGISTRY)


def check_control_points(c: Sequence[int], T: int, who: str = "source") -> list[int]:
    """``c`` as a list of int after checking it is a valid control-point list for ``T`` frames: length T, values
    in {0, 1}, c[0] == 1. Raises ValueError naming ``who`` otherwise."""
    c = [int(v) for v in c]
    if len(c) != T or any(v not in (0, 1) for v in c) or (T and c[0] != 1):
        raise ValueError(f"{who} returned an invalid control-point list {c} for T={T}")
    return c


class ControlPointSource(ABC):
    """Base of every source: ``fit(train_clips)`` (a no-op for sources that learn nothing), ``src(clip)`` ->
    list[int] of length T with c[0] == 1, ``predict_many``, and ``stats`` (counters: fallbacks, skipped clips)."""

    name = "base"

    def __init__(self):
        self.stats: Counter = Counter()

    def fit(self, train_clips: Iterable[Clip]) -> "ControlPointSource":
        return self

    @abstractmethod
    def __call__(self, clip: Clip) -> list[int]:
        """Implemented by each subclass."""

    def predict_many(self, clips: Sequence[Clip]) -> list[list[int]]:
        return [self(c) for c in clips]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def get_source(name: str, **kw) -> ControlPointSource:
    """'gt' | 'cosine' | 'learned' | 'rcpg' (kw go to the source's constructor). Raises ConfigError for an
    unknown name."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown control-point source {name!r}; choose one of {', '.join(SOURCES)}")
    return resolve_name(REGISTRY[name])(**kw)
