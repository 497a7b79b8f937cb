"""Progress bars that behave in a terminal, in JupyterLab and in headless papermill runs."""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def headless() -> bool:
    """True in CI, under papermill, or when COPROP_HEADLESS is set: print sparse plain lines, no widgets."""
    return bool(os.environ.get("COPROP_HEADLESS") or os.environ.get("CI") or not sys.stderr.isatty())


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None,
             disable: bool = False, **kwargs) -> "Iterable[T]":
    """tqdm.auto when interactive; plain tqdm to stderr with a long refresh interval when headless."""
    if headless():
        from tqdm import tqdm

        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("ascii", True)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, **kwargs)
