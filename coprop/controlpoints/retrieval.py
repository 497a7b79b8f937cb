"""The training-set document D of RCPG (paper Eq. 4): categories and GT control points of training clips.

Lookup order for a category string q (usually the LLM's answer to Q2):
  1. 'category'  the normalised q (after synonyms) equals a stored category;
  2. 'mention'   a stored category (or an alias of one) appears as whole words inside q — models answer
                 "The sound is a dog barking." rather than "dog"; the longest mention wins;
  3. 'embedding' otherwise the k stored clips nearest to the query clip's audio embedding (cosine);
  4. 'none'      no category match and no embedding given.
Within a category, clips closest in audio come first when an embedding is given, else by name.
The query clip itself (same name) is never returned.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from coprop.controlpoints.prompts import Example, PromptSet
from coprop.data.clip import Clip

_PUNCT = re.compile(r"[^a-z0-9]+")
_KEEP_S = ("ss", "us", "is", "ous")


def singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(_KEEP_S):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def normalise(name: str) -> str:
    """'Dog_Barking!' -> 'dog barking'; 'Guitars' -> 'guitar' (lower case, punctuation to spaces, singular)."""
    words = _PUNCT.sub(" ", str(name).lower()).split()
    return " ".join(singular(w) for w in words)


def clip_category(clip: Clip) -> str | None:
    """The clip's category: meta['category'], else the most frequent sounding category (synthetic clips)."""
    cat = clip.meta.get("category")
    if cat:
        return str(cat)
    sounding = clip.meta.get("sounding")
    if sounding:
        names = [n for frame in sounding for n in ([frame] if isinstance(frame, str) else frame) if n]
        if names:
            return Counter(names).most_common(1)[0][0]
    return None


@dataclass
class Entry:
    name: str
    category: str
    control_points: list[int]
    embedding: np.ndarray | None = None


@dataclass
class RetrievalStore:
    entries: list[Entry] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.synonyms = {normalise(k): normalise(v) for k, v in (self.synonyms or {}).items()}

    @classmethod
    def from_clips(cls, clips: Iterable[Clip], annotate, synonyms: dict | None = None,
                   embed: bool = True) -> "RetrievalStore":
        """``annotate(clip) -> list[int]`` gives each clip's GT control points (e.g. the 'gt' source).
        Clips without a category or whose GT cannot be annotated are skipped."""
        from coprop.controlpoints.features import clip_embedding, clip_logmel
        from coprop.errors import CopropError

        if synonyms is None:
            synonyms = PromptSet.load().synonyms
        store = cls(synonyms=synonyms)
        for clip in clips:
            cat = clip_category(clip)
            if cat is None:
                continue
            try:
                cp = list(annotate(clip))
            except CopropError:
                continue
            emb = clip_embedding(clip_logmel(clip)) if embed else None
            store.add(clip.name, cat, cp, emb)
        return store

    def add(self, name: str, category: str, control_points: Sequence[int], embedding=None) -> None:
        self.entries.append(Entry(str(name), str(category), [int(v) for v in control_points], embedding))

    def __len__(self) -> int:
        return len(self.entries)

    def canonical(self, name: str) -> str:
        n = normalise(name)
        return self.synonyms.get(n, n)

    def categories(self) -> list[str]:
        """Stored category names as written in the data, in first-seen order."""
        return list(dict.fromkeys(e.category for e in self.entries))

    def resolve(self, query: str) -> tuple[str | None, str]:
        """(stored canonical category, how) for a free-text category answer; how in category/mention/none."""
        known = {self.canonical(e.category) for e in self.entries}
        q = self.canonical(query)
        if q in known:
            return q, "category"
        padded = f" {normalise(query)} "
        # aliases and stored names, longest first, so 'lawn mower' beats 'mower'
        names = sorted(set(known) | {a for a, c in self.synonyms.items() if c in known}, key=len, reverse=True)
        for name in names:
            if name and f" {name} " in padded:
                return self.synonyms.get(name, name), "mention"
        return None, "none"

    def lookup(self, query: str, k: int = 3, exclude: str | None = None, embedding: np.ndarray | None = None,
               length: int | None = None) -> tuple[list[Example], str]:
        """Up to k examples for the category ``query`` and how they were found (see module docstring).
        With ``length``, clips of that many frames are preferred (AVSS mixes 5- and 10-frame clips, and an
        example list of another length would contradict the instruction)."""
        pool = [e for e in self.entries if e.name != exclude]
        if length is not None and any(len(e.control_points) == length for e in pool):
            pool = [e for e in pool if len(e.control_points) == length]
        cat, how = self.resolve(query or "")
        if cat is not None:
            pool = [e for e in pool if self.canonical(e.category) == cat]
        elif embedding is not None:
            how = "embedding"
        else:
            return [], "none"
        pool = self._rank(pool, embedding)
        return [Example(e.name, e.category, list(e.control_points)) for e in pool[:k]], how

    @staticmethod
    def _rank(pool: list[Entry], embedding) -> list[Entry]:
        if embedding is None or not pool or any(e.embedding is None for e in pool):
            return sorted(pool, key=lambda e: e.name)
        q = np.asarray(embedding, dtype=np.float64)
        q = q / max(float(np.linalg.norm(q)), 1e-8)
        sims = [float(np.dot(q, e.embedding)) for e in pool]
        order = sorted(range(len(pool)), key=lambda i: (-sims[i], pool[i].name))
        return [pool[i] for i in order]
