"""Exact resume: a run interrupted mid-epoch and resumed ends with bit-identical weights and metrics."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from coprop.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from train_toy import run_toy, weights  # noqa: E402



_TIMING = ("time_s", "samples_per_s")


class Interrupted(Exception):
    pass


def _stop_at(step):
    def hook(global_step):
        if global_step == step:
            raise Interrupted

    return hook


def _untimed(history):
    return [{k: v for k, v in row.items() if k not in _TIMING} for row in history]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    res = run_toy(tmp_path_factory.mktemp("ref"))
    return weights(res.model), res.history


@pytest.mark.parametrize("stop", [3, 7, 12])   # mid-epoch 1, just after a mid-epoch checkpoint, end of epoch 2
def test_interrupted_run_resumes_bit_identical(tmp_path, reference, stop):
    ref_w, ref_hist = reference
    with pytest.raises(Interrupted):
        run_toy(tmp_path, on_step_end=_stop_at(stop))
    res = run_toy(tmp_path)
    assert res.resumed_from is not None and "step-" in res.resumed_from
    w = weights(res.model)
    assert all(torch.equal(w[k], ref_w[k]) for k in ref_w), "weights differ from the uninterrupted run"
    assert _untimed(res.history) == _untimed(ref_hist)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("stage,epoch,loss") and len(rows) == 1 + 3


def test_twice_interrupted_run_still_exact(tmp_path, reference):
    ref_w, _ = reference
    for stop in (5, 11):
        with pytest.raises(Interrupted):
            run_toy(tmp_path, on_step_end=_stop_at(stop))
    w = weights(run_toy(tmp_path).model)
    assert all(torch.equal(w[k], ref_w[k]) for k in ref_w)


def test_finished_stage_returns_its_weights_without_training(tmp_path, reference):
    ref_w, _ = reference
    run_toy(tmp_path)
    steps = []
    res = run_toy(tmp_path, on_step_end=steps.append)
    assert steps == [] and res.resumed_from is not None
    w = weights(res.model)
    assert all(torch.equal(w[k], ref_w[k]) for k in ref_w)


def test_no_resume_starts_over_and_mismatched_checkpoint_is_refused(tmp_path):
    with pytest.raises(Interrupted):
        run_toy(tmp_path, on_step_end=_stop_at(3))
    steps = []
    run_toy(tmp_path, resume=False, on_step_end=steps.append, evaluate=False)
    assert steps[0] == 1
    with pytest.raises(ConfigError, match="different run.*--no-resume"):
        run_toy(tmp_path, batch_size=3)


def test_run_folder_reused_for_other_data_is_refused(tmp_path):
    from train_toy import ToyData, ToyNet, toy_loss

    from coprop.train.loop import TrainParams, fit

    p = TrainParams(epochs=1, batch_size=4, max_steps_per_epoch=2)
    fit(ToyNet(), ToyData(), toy_loss, p, tmp_path, "toy", identity={"data": {"root": "/a", "split": "train"}})
    with pytest.raises(ConfigError, match="different run"):
        fit(ToyNet(), ToyData(), toy_loss, p, tmp_path, "toy", identity={"data": {"root": "/b", "split": "train"}})


# ---------------------------------------------------------------- the real stages, tiny config, smoke data

@pytest.fixture(scope="module")
def smoke_ms3(synth_root):
    from coprop.data import open_dataset
    from coprop.models.config import get_config
    from coprop.train import prepare

    cfg = get_config("tiny", image_size=64)
    train = prepare(open_dataset(synth_root, "ms3", "train"), 64)
    val = prepare(open_dataset(synth_root, "ms3", "val"), 64)
    return cfg, train, val


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["keyframe", "propagator"])
def test_real_stage_interrupted_and_resumed_is_bit_identical(tmp_path, monkeypatch, smoke_ms3, stage):
    import coprop.train.stages as stages
    from coprop.train import TrainParams, load_run

    cfg, train, val = smoke_ms3
    fn = stages.train_keyframe if stage == "keyframe" else stages.train_propagator
    p = TrainParams(epochs=2, batch_size=2, lr=1e-3, max_steps_per_epoch=2, checkpoint_every=1, num_threads=1)
    ref = fn(cfg, train, val, tmp_path / "ref", params=p)

    real_fit = stages.fit
    monkeypatch.setattr(stages, "fit", lambda *a, **k: real_fit(*a, **k, on_step_end=_stop_at(3)))
    with pytest.raises(Interrupted):
        fn(cfg, train, val, tmp_path / "cut", params=p)
    monkeypatch.setattr(stages, "fit", real_fit)
    res = fn(cfg, train, val, tmp_path / "cut", params=p)

    a, b = ref.model.state_dict(), res.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed stage differs from the uninterrupted one"
    assert _untimed(res.history) == _untimed(ref.history)
    assert {"val_J", "val_F"} <= set(res.final)
    run = load_run(tmp_path / "cut")
    loaded = (run.keyframe if stage == "keyframe" else run.propagator).state_dict()
    assert all(torch.equal(loaded[k], b[k]) for k in b)
