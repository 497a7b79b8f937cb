"""Control-point sources behind one interface: gt, cosine, learned (and rcpg without a backend)."""
from __future__ import annotations

import numpy as np
import pytest
from rcpg_util import make_clip, toy_clips

from coprop.controlpoints.detectors import SOURCES, CosineSource, LearnedSource, get_source
from coprop.controlpoints.scoring import boundary_scores
from coprop.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def toy():
    return toy_clips(24, seed=0), toy_clips(12, seed=1)


def _valid(c, T):
    return len(c) == T and c[0] == 1 and set(c) <= {0, 1}


def test_gt_source_follows_masks():
    clip = make_clip("a", [(0, 2.0, "low"), (2.0, 5, "high")])
    assert get_source("gt")(clip) == [1, 0, 1, 0, 0]  # frame 2 sits at 2.94 s (AVSBench timing), after the switch
    assert get_source("gt", annotation="meta")(clip) == [1, 0, 1, 0, 0]
    clip.masks = None
    with pytest.raises(DataError, match="no GT masks"):
        get_source("gt")(clip)


def test_every_source_has_the_interface(toy):
    train, test = toy
    for name in SOURCES:
        src = get_source(name).fit(train[:8])
        assert src.name.startswith(name)
        for clip in test[:3]:
            assert _valid(src(clip), clip.num_frames)
    with pytest.raises(ConfigError):
        get_source("oracle-of-delphi")


def test_cosine_threshold_rule_and_fit(toy):
    train, test = toy
    clip = make_clip("c", [(0, 2.0, "low"), (2.0, 5, "high")])
    src = CosineSource(threshold=0.9, fit_threshold=False)
    sims = src.similarities(clip)
    assert sims.shape == (4,) and np.all(sims <= 1 + 1e-6)
    assert src(clip) == [1] + [int(s < 0.9) for s in sims]
    assert sims[1] + 0.1 < min(sims[0], sims[2], sims[3])  # low tone -> high tone between frames 1 and 2
    fitted = CosineSource(threshold=-5.0).fit(train)  # a useless start; fit must move it
    assert fitted.threshold > -5.0 and fitted.stats["train_clips"] == len(train)
    gt = get_source("gt")
    s = boundary_scores([fitted(c) for c in test], [gt(c) for c in test], 1)
    assert s["f1"] >= 0.6
    proj = CosineSource(embedding="projection").fit(train)
    assert _valid(proj(clip), 5)
    with pytest.raises(ConfigError):
        CosineSource(embedding="smell")


def test_learned_detector_learns_boundaries_and_categories(toy):
    train, test = toy
    src = LearnedSource(epochs=200).fit(train)
    gt = get_source("gt")
    s = boundary_scores([src(c) for c in test], [gt(c) for c in test], 1)
    assert s["f1"] >= 0.6, s
    probs = src.boundary_probs(test[1])
    assert probs.shape == (4,) and np.all((probs >= 0) & (probs <= 1))
    cats = src.categories(test[0])
    assert len(cats) == 5 and set(cats) <= set(src.class_names)
    truth = ["+".join(s) or "silence" for c in test for s in c.meta["sounding"]]
    pred = [x for c in test for x in src.categories(c)]
    assert np.mean([a == b for a, b in zip(truth, pred)]) >= 0.7


def test_learned_detector_errors():
    with pytest.raises(ConfigError, match="fit"):
        LearnedSource()(make_clip("x", [(0, 5, "low")]))
    unlabeled = make_clip("y", [(0, 5, "low")])
    unlabeled.masks = None
    with pytest.raises(ConfigError, match="none usable"):
        LearnedSource().fit([unlabeled])


def test_rcpg_without_backend_falls_back_and_counts(toy):
    train, test = toy
    src = get_source("rcpg", backend="", variant="3-step").fit(train[:8])
    learned = src.fallback
    assert [src(c) for c in test[:3]] == [learned(c) for c in test[:3]]
    assert src.stats["no_backend"] == 3 and src.stats["fallback"] == 3
    with pytest.raises(ConfigError):
        get_source("rcpg", variant="5-step")
