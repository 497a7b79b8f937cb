"""coprop.train.jobs: jobs in worker processes, after their prerequisites, in the caller's priority order."""
from __future__ import annotations

import time

import pytest

from coprop.errors import ConfigError
from coprop.train.jobs import Job, run_jobs


def _stamp(path: str, name: str, wait: float = 0.0) -> str:
    t0 = time.time()
    time.sleep(wait)
    with open(path, "a") as f:
        f.write(f"{name} {t0:.4f} {time.time():.4f}\n")
    return name


def _fail() -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("workers", [1, 2])
def test_jobs_run_after_their_prerequisites(tmp_path, workers):
    log = str(tmp_path / "log")
    jobs = [Job("a", _stamp, dict(path=log, name="a", wait=0.3)),
            Job("b", _stamp, dict(path=log, name="b", wait=0.3)),
            Job("c", _stamp, dict(path=log, name="c"), after=("a", "b")),
            Job("d", _stamp, dict(path=log, name="d"), after=("c",))]
    done = run_jobs(jobs, workers=workers, echo=lambda m: None)
    assert {k: v[0] for k, v in done.items()} == {"a": "a", "b": "b", "c": "c", "d": "d"}
    t = {n: (float(s), float(e)) for n, s, e in (line.split() for line in open(log))}
    assert t["c"][0] >= max(t["a"][1], t["b"][1]) and t["d"][0] >= t["c"][1]
    if workers == 2:        # a and b overlap in time: two processes
        assert t["b"][0] < t["a"][1] and t["a"][0] < t["b"][1]


def test_a_failing_job_stops_the_run_and_is_named(tmp_path):
    jobs = [Job("bad", _fail), Job("later", _stamp, dict(path=str(tmp_path / "log"), name="x"), after=("bad",))]
    with pytest.raises(RuntimeError, match="job bad failed: ValueError: boom"):
        run_jobs(jobs, workers=2, echo=lambda m: None)
    assert not (tmp_path / "log").exists()


def test_bad_plans_are_refused():
    with pytest.raises(ConfigError, match="unknown"):
        run_jobs([Job("a", _fail, after=("nope",))], workers=1)
    with pytest.raises(ConfigError, match="circle"):
        run_jobs([Job("a", _fail, after=("b",)), Job("b", _fail, after=("a",))], workers=1)
