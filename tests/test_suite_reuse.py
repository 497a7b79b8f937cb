"""Reusing a model suite trained on other data warns (and says which data and what to do)."""
from __future__ import annotations

import json

import pytest

from coprop import experiments as E
from coprop.experiments.suite import warn_other_data


def _suite_json(tmp_path, **over):
    base = tmp_path / "runs" / "seed0"
    base.mkdir(parents=True)
    info = {"data_root": "", "synthetic_preset": "smoke", "subset": "ms3", "data_seed": 0, "suite": "smoke",
            "model_config": "tiny", "seed": 0, **over}
    (base / "suite.json").write_text(json.dumps(info))
    return base, info


def test_other_preset_warns_same_data_does_not(tmp_path, recwarn):
    base, info = _suite_json(tmp_path)
    assert warn_other_data(base, dict(info), echo=lambda *_: None) == []
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    lines = []
    with pytest.warns(UserWarning, match="trained on other data .*synthetic_preset: 'smoke' -> 'demo'"):
        diffs = warn_other_data(base, {**info, "synthetic_preset": "demo"}, echo=lines.append)
    assert diffs == ["synthetic_preset: 'smoke' -> 'demo'"] and "run_dir of its own" in lines[0]


def test_ensure_suite_warns_before_reusing(tmp_path):
    _suite_json(tmp_path)
    with pytest.warns(UserWarning, match="synthetic_preset"):
        E.ensure_suite(tmp_path / "runs", E.Data("", "demo", "ms3", 0), seed=0, only=[], echo=lambda *_: None)


def test_one_parameter_picks_models_and_suite():
    assert E.suite_defaults("", "", E.Data("", "demo")) == ("runs/demo", "demo")
    assert E.suite_defaults("", "", E.Data("", "long")) == ("runs/long", "demo")
    assert E.suite_defaults("", "", E.Data("/data/AVSBench", "smoke")) == ("runs/paper", "paper")
    assert E.suite_defaults("runs/x", "smoke", E.Data("", "demo")) == ("runs/x", "smoke")


def test_suite_load_leaves_out_a_variant_still_training(tmp_path):
    """coprop demo predicts seed 0 while its other worker trains seed 0's 1-level propagator: that folder (no
    config.json yet) is not part of the suite, instead of failing the whole load."""
    from coprop.train.checkpoint import save_weights
    from coprop.train.run import WEIGHTS, build_model, record_stage

    cfg = E.suite_config("tiny", "smoke", "main")
    main = tmp_path / "seed0" / "main"
    save_weights(main / WEIGHTS["keyframe"], build_model("keyframe", cfg), {"stage": "keyframe"})
    record_stage(main, cfg, "keyframe", {})
    (tmp_path / "seed0" / "aip1" / "checkpoints").mkdir(parents=True)
    suite = E.Suite.load(tmp_path, 0)
    assert set(suite.runs) == {"main"} and suite.runs["main"].stages == ["keyframe"]
    assert suite.runs["main"].keyframe_stage1 is not None    # built on first use


def test_data_error_survives_pickling():
    """A worker process reports its DataError to the parent by pickling it (coprop demo's job pool)."""
    import pickle

    from coprop.errors import DataError

    e = pickle.loads(pickle.dumps(DataError("runs/x/config.json", "run folder has no config.json", "train it")))
    assert (str(e.path), e.problem, e.hint) == ("runs/x/config.json", "run folder has no config.json", "train it")
    assert str(e) == "runs/x/config.json: run folder has no config.json (train it)"
