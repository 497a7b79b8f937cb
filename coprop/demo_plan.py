"""``coprop demo``'s model phase as a plan of jobs for two worker processes (coprop.train.jobs).

The audio encoder's pre-training, once (shared by every seed, as one pre-trained VGGish is). For every training seed
of Tables 1 and 2a (``seeds``): the keyframe model, its keyframe fine-tuning, the 4-level
Audio-Insert Propagator, the simultaneous baseline and the plain-AOT propagator; for the seeds of the other tables
(``extra_seeds``, a subset): the 1-level propagator and the text-guided keyframe model too. Then, per seed, the
control-point sources are fitted and every method's test predictions are made, so the notebooks only read caches.
Jobs that write into the same run folder (its config.json and metrics.csv) run one after another.
"""
from __future__ import annotations

from typing import Any, Callable

_CTX: dict[str, Any] = {}     # the parent's data and settings, inherited by the forked workers


def _train(seed: int, variant: str, stage: str) -> None:
    from coprop import experiments as E

    c = _CTX
    E.ensure_suite(c["run_dir"], c["data"], seed, c["suite"], c["model_config"], variants=(variant,),
                   device=c["device"], echo=c["echo"], only=[(variant, stage)])


def _audio() -> None:
    from coprop import experiments as E

    c = _CTX
    E.ensure_audio_encoder(c["run_dir"], c["data"], None, c["suite"], c["model_config"], echo=c["echo"])


def _sources(seed: int) -> None:
    from coprop import experiments as E

    c = _CTX
    suite = E.Suite(E.resolve_path(c["run_dir"]) / f"seed{seed}", seed)
    E.fit_sources(suite, c["data"], ["cosine", "learned"], echo=c["echo"], train=c["train_clips"])


def _predict(seed: int, which: str) -> None:
    """Every test prediction the notebooks will ask for, cached under <run_dir>/predictions/."""
    from coprop import experiments as E

    c = _CTX
    ev = E.evaluation(c["run_dir"], c["data"], [seed], -1, device=c["device"])
    ev.run(E.core_methods(ev) if which == "core" else E.all_methods(ev), echo=c["echo"])


def plan(seeds: list[int], extra_seeds: list[int]) -> list:
    """The jobs, in the order the scheduler prefers among ready ones (long chains first: keyframe models, then the
    stages that start from them, then sources and predictions)."""
    from coprop import experiments as E
    from coprop.train.jobs import Job

    core, extra = ("main", "aot"), ("aip1", "text")
    models = [(s, v, st) for s in seeds for v in E.VARIANTS if v in core or (v in extra and s in extra_seeds)
              for st in E.VARIANTS[v]["stages"]]
    rank = {"keyframe": 0, "keyframe_ft": 1, "propagator": 2, "baseline": 2}
    models.sort(key=lambda m: (m[1] in extra, rank[m[2]], m[1] != "main", m[0]))
    jobs = [Job("audio", _audio, {})]   # one pre-trained audio encoder (like VGGish) for every seed's models
    jobs += [Job(f"s{s}:{v}/{st}", _train, dict(seed=s, variant=v, stage=st),
                 tuple(f"s{s}:{dv}/{ds}" for dv, ds in E.stage_dependencies(v, st))
                 + (("audio",) if (v, st) == ("main", "keyframe") else ())) for s, v, st in models]
    jobs += [Job(f"s{s}:sources", _sources, dict(seed=s)) for s in seeds]
    for s in seeds:
        mine = [j.name for j in jobs if j.name.startswith(f"s{s}:")]
        jobs.append(Job(f"s{s}:predict", _predict, dict(seed=s, which="core"),
                        tuple(n for n in mine if n.split(":")[1].split("/")[0] not in extra)))
        if s in extra_seeds:
            jobs.append(Job(f"s{s}:predict-extra", _predict, dict(seed=s, which="all"),
                            tuple(mine) + (f"s{s}:predict",)))
    return jobs


def run(run_dir: str, data, seeds: list[int], extra_seeds: list[int], suite: str = "demo",
        model_config: str = "tiny", device: str = "auto", workers: int = 2, echo: Callable = print) -> dict:
    """Train, fit and predict everything with ``workers`` processes; returns {job: [wall s, CPU s]}."""
    from coprop import experiments as E
    from coprop.train.jobs import run_jobs

    size = E.suite_config(model_config, suite, "main").image_size
    E.prepared_data(data, suite, size)        # decoded once here; the forked workers share it
    _CTX.update(run_dir=run_dir, data=data, suite=suite, model_config=model_config, device=device, echo=echo,
                train_clips=E.suite_train_clips(data, suite))
    done = run_jobs(plan(seeds, extra_seeds), workers=workers, echo=echo)
    return {name: [round(wall, 1), round(cpu, 1)] for name, (_, wall, cpu) in done.items()}
