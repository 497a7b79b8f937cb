"""Progress bars and display mode: live in JupyterLab, plain and sparse in batch runs (papermill, tests, CI).

A run is *headless* only when something says so (workbench.md §1.4):

* ``COPROP_HEADLESS`` — set to ``1`` by ``coprop run-notebooks`` for the kernels it starts; ``0`` forces the
  interactive mode (e.g. a JupyterLab started from a CI shell);
* ``CI`` — set by CI services;
* the tests — ``PYTEST_CURRENT_TEST`` in the pytest process;
* a batch executor — the kernel was started by papermill, pytest (nbval), ``jupyter nbconvert --execute`` or
  ``jupyter execute`` (the program of the process that launched the kernel, ``JPY_PARENT_PID``).

Anything else — a kernel in JupyterLab or the classic Notebook, a terminal — is interactive: the clip viewer
is the live widget and progress bars come from ``tqdm.auto`` (a notebook bar in a kernel). That a kernel's
stderr is not a terminal says nothing: it never is, in JupyterLab as under papermill.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, TypeVar

T = TypeVar("T")

_BATCH_PROGRAMS = ("papermill", "pytest", "py.test", "nbval", "jupyter-nbconvert", "jupyter-execute")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def headless() -> bool:
    """True when a batch run (runner, papermill, tests, CI) executes this code; False in JupyterLab or a terminal.

    Order: ``COPROP_HEADLESS`` (1/true or 0/false) decides if set; then ``CI``; then ``PYTEST_CURRENT_TEST``;
    then, inside a Jupyter kernel, the program that launched the kernel."""
    forced = os.environ.get("COPROP_HEADLESS", "").strip().lower()
    if forced in _TRUE:
        return True
    if forced in _FALSE:
        return False
    if os.environ.get("CI", "").strip().lower() not in ("", *_FALSE):
        return True
    if os.environ.get("PYTEST_CURRENT_TEST"):
        return True
    return in_kernel() and launcher_program() in _BATCH_PROGRAMS


def in_kernel() -> bool:
    """True inside a Jupyter kernel (ipykernel), whatever front end or executor talks to it."""
    if "IPython" not in sys.modules:   # a kernel has always imported IPython; plain scripts need not pay for it
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def launcher_program(pid: int | None = None) -> str:
    """Name of the program that started this kernel: ``papermill``, ``pytest``, ``jupyter-lab`` ... ('' unknown).

    ``python -m X`` gives ``X``; ``python path/to/X`` and ``path/to/X`` give ``X``'s file name."""
    if pid is None:
        pid = int(os.environ.get("JPY_PARENT_PID") or 0) or os.getppid()
    argv = _cmdline(pid)
    while argv and Path(argv[0]).name.startswith("python"):
        argv = argv[1:]
        while argv and argv[0].startswith("-") and argv[0] != "-m":
            argv = argv[1:]          # interpreter options such as -u, -X dev
        if argv[:1] == ["-m"]:
            return argv[1].split(".")[0] if len(argv) > 1 else ""
    return Path(argv[0]).name if argv else ""


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    except OSError:
        pass
    try:   # macOS and others: psutil when installed
        import psutil

        return psutil.Process(pid).cmdline()
    except Exception:  # noqa: BLE001 - no psutil, no such process, no permission: the launcher is unknown
        return []


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None,
             disable: bool = False, **kwargs) -> "Iterable[T]":
    """A tqdm bar: ``tqdm.auto`` (the notebook widget in a kernel, a live bar in a terminal) when interactive;
    plain ASCII lines to stderr, at most one per 10 s, when headless or when stderr is a file or pipe."""
    if headless() or not (in_kernel() or sys.stderr.isatty()):
        from tqdm import tqdm

        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("ascii", True)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, **kwargs)
