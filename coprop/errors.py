"""Errors a user can act on: each names the file (when there is one) and what to do."""
from __future__ import annotations

from pathlib import Path


class CopropError(Exception):
    """Base class for every error coprop raises on purpose."""


class DataError(CopropError):
    """Bad or missing input data. Carries the offending path so batch jobs can report it."""

    def __init__(self, path: str | Path | None, problem: str, hint: str | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.hint = hint
        where = f"{self.path}: " if self.path is not None else ""
        tail = f" ({hint})" if hint else ""
        super().__init__(f"{where}{problem}{tail}")

    def __reduce__(self):
        # rebuilt from its own fields: pickling (a worker process reporting it) would otherwise call __init__ with
        # the one formatted message and fail, hiding the error behind a BrokenProcessPool
        return type(self), (self.path, self.problem, self.hint)


class WeightsError(CopropError):
    """A weight file is missing or does not match the architecture."""


class ConfigError(CopropError):
    """An unknown or inconsistent configuration value."""
