"""Retrieval store: normalisation, synonyms, mentions, embedding fallback, never the query itself."""
from __future__ import annotations

import numpy as np
import pytest
from rcpg_util import make_clip

from coprop.controlpoints.detectors import GTSource
from coprop.controlpoints.prompts import PromptSet
from coprop.controlpoints.retrieval import RetrievalStore, clip_category, normalise


@pytest.mark.parametrize("raw,norm", [
    ("Dog_Barking!", "dog barking"), ("Guitars", "guitar"), ("  BABIES ", "baby"), ("glass", "glass"),
    ("lawn-mowers.", "lawn mower"), ("Bus", "bus"), ("watches", "watch"),
])
def test_normalise(raw, norm):
    assert normalise(raw) == norm


def _store():
    s = RetrievalStore(synonyms={"puppy": "dog", "male speech": "man", "lawnmower": "lawn mower"})
    e = lambda *v: np.asarray(v, float) / np.linalg.norm(v)  # noqa: E731
    s.add("dog-1", "dog", [1, 0, 0, 0, 0], e(1, 0, 0))
    s.add("dog-2", "Dogs", [1, 0, 1, 0, 0], e(0.9, 0.1, 0))
    s.add("dog-3", "dog", [1, 0, 0, 0, 1], e(0, 1, 0))
    s.add("man-1", "man", [1, 1, 0, 0, 0], e(0, 0, 1))
    s.add("mower-1", "lawn_mower", [1, 0, 0, 1, 0], e(0, 0.7, 0.7))
    return s


def test_category_lookup_with_synonyms_and_k():
    s = _store()
    ex, how = s.lookup("DOGS.", k=2)
    assert how == "category" and [x.name for x in ex] == ["dog-1", "dog-2"]  # by name without an embedding
    ex, how = s.lookup("Puppy", k=5)
    assert how == "category" and {x.name for x in ex} == {"dog-1", "dog-2", "dog-3"}
    ex, how = s.lookup("male speech", k=3)
    assert how == "category" and [x.control_points for x in ex] == [[1, 1, 0, 0, 0]]
    ex, how = s.lookup("lawnmower", k=3)
    assert how == "category" and ex[0].name == "mower-1"


def test_mention_inside_a_sentence_and_ranking_by_audio():
    s = _store()
    ex, how = s.lookup("The sound is a puppy barking in a yard.", k=3, embedding=np.array([0.0, 1.0, 0.0]))
    assert how == "mention" and [x.name for x in ex] == ["dog-3", "dog-2", "dog-1"]
    ex, how = s.lookup("It is a lawn mower, I think", k=1)
    assert how == "mention" and ex[0].name == "mower-1"


def test_unknown_category_falls_back_to_nearest_audio():
    s = _store()
    ex, how = s.lookup("a violin", k=2, embedding=np.array([0.0, 0.1, 1.0]))
    assert how == "embedding" and [x.name for x in ex] == ["man-1", "mower-1"]
    assert s.lookup("a violin", k=2) == ([], "none")


def test_prefers_examples_of_the_clip_length():
    s = _store()
    s.add("dog-long", "dog", [1, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    ex, _ = s.lookup("dog", k=5, length=10)
    assert [x.name for x in ex] == ["dog-long"]
    ex, _ = s.lookup("dog", k=5, length=5)
    assert "dog-long" not in {x.name for x in ex} and len(ex) == 3
    ex, _ = s.lookup("dog", k=5, length=7)  # no clip of that length: any length
    assert len(ex) == 4


def test_never_retrieves_itself():
    s = _store()
    for q in ("dog", "something else"):
        ex, _ = s.lookup(q, k=10, exclude="dog-1", embedding=np.array([1.0, 0, 0]))
        assert "dog-1" not in {x.name for x in ex}


def test_from_clips_uses_gt_and_category():
    clips = [make_clip("a", [(0, 2.0, "low"), (2.0, 5, "high")], category="dog"),
             make_clip("b", [(0, 5, "noise")])]  # no category: the most frequent sounding source
    assert clip_category(clips[1]) == "noise"
    store = RetrievalStore.from_clips(clips, GTSource(), synonyms=PromptSet.load().synonyms)
    assert store.categories() == ["dog", "noise"]
    ex, how = store.lookup("A dog is barking", k=3)
    assert how == "mention" and ex[0].control_points == [1, 0, 1, 0, 0]
    assert store.entries[0].embedding.shape == (64,)
