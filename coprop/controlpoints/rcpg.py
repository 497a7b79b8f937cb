"""RCPG (paper §3.2, Algorithm 1): ask an audio LLM for the control-point list, optionally with retrieved
same-category training examples; fall back to an offline detector whenever the LLM gives no usable answer.

The dialogue runs batched: step 1 for every clip of a batch, then step 2 for all, then step 3, each turn
re-sending the conversation so far with the clip's audio. ``stats`` counts, per clip: 'llm' (answer parsed),
'backend_error', 'parse_error', 'no_backend', 'fallback' (= the three failures), and the retrieval route
('retrieval_category', 'retrieval_mention', 'retrieval_embedding', 'retrieval_none'); ``parse_stats``
counts the parser's repairs. ``transcripts[clip_name]`` keeps each dialogue for inspection.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from coprop.controlpoints.detectors import GTSource
from coprop.controlpoints.llm import ChatRequest, LLMBackend, assistant, make_backend, user
from coprop.controlpoints.parse import ControlPointParseError, ParseStats, parse_control_points
from coprop.controlpoints.prompts import PromptSet, check_variant
from coprop.controlpoints.retrieval import RetrievalStore
from coprop.controlpoints.source import ControlPointSource, check_control_points, get_source
from coprop.data.clip import Clip


class RCPGSource(ControlPointSource):
    name = "rcpg"

    def __init__(self, backend: LLMBackend | str | None = None, variant: str = "3-step+retrieval", k: int = 3,
                 prompts: PromptSet | str | None = None, fallback: ControlPointSource | str = "learned",
                 batch_size: int = 4, category_hint: bool = True, **backend_kw):
        super().__init__()
        self.variant = check_variant(variant)
        self.name = f"rcpg:{variant}"
        self.backend = make_backend(backend, **backend_kw) if isinstance(backend, str) or backend is None else backend
        self.k, self.batch_size, self.category_hint = int(k), max(1, int(batch_size)), category_hint
        self.prompts = prompts if isinstance(prompts, PromptSet) else PromptSet.load(prompts)
        self.fallback = get_source(fallback) if isinstance(fallback, str) else fallback
        self.store: RetrievalStore | None = None
        self.parse_stats = ParseStats()
        self.transcripts: dict[str, list[dict]] = {}

    def fit(self, train_clips: Iterable[Clip]) -> "RCPGSource":
        """Fit the fallback detector and build the retrieval store D from the training clips' GT."""
        clips = list(train_clips)
        self.fallback.fit(clips)
        self.store = RetrievalStore.from_clips(clips, GTSource(), synonyms=self.prompts.synonyms)
        return self

    def known_categories(self) -> list[str]:
        return self.store.categories() if (self.store is not None and self.category_hint) else []

    def __call__(self, clip: Clip) -> list[int]:
        return self.predict_many([clip])[0]

    def predict_many(self, clips: Sequence[Clip]) -> list[list[int]]:
        out: list[list[int]] = []
        for start in range(0, len(clips), self.batch_size):
            out += self._batch(list(clips[start:start + self.batch_size]))
        return out

    def _fallback(self, clip: Clip, why: str) -> list[int]:
        self.stats[why] += 1
        self.stats["fallback"] += 1
        return check_control_points(self.fallback(clip), clip.num_frames, "fallback detector")

    def _ask(self, states: list[dict], texts: list[str]) -> None:
        """Append one user turn per live state, query the backend in one batch, append the answers."""
        live = []
        for s, text in zip(states, texts):
            if s["error"] is None:
                s["messages"].append(user(text, audio=not s["messages"]))  # the audio rides on the first turn
                live.append(s)
        if not live:
            return
        answers = self.backend.chat_batch([ChatRequest(list(s["messages"]), s["audio"]) for s in live])
        for s, ans in zip(live, answers):
            if isinstance(ans, Exception):
                s["error"] = ans
            else:
                s["messages"].append(assistant(ans))

    def _batch(self, clips: list[Clip]) -> list[list[int]]:
        if self.backend is None:
            return [self._fallback(c, "no_backend") for c in clips]
        states = [{"clip": c, "T": c.num_frames, "audio": np.asarray(c.waveform, np.float32), "messages": [],
                   "error": None} for c in clips]
        known = self.known_categories()
        if self.variant == "1-step":
            self._ask(states, [self.prompts.one_step(s["T"], known) for s in states])
        else:
            self._ask(states, [self.prompts.describe(s["T"]) for s in states])
            self._ask(states, [self.prompts.category(s["T"], known) for s in states])
            finals = []
            for s in states:
                cat_answer = s["messages"][-1]["text"] if s["error"] is None else ""
                examples = []
                if self.variant == "3-step+retrieval" and s["error"] is None:
                    examples, how = self._retrieve(s["clip"], cat_answer)
                    self.stats[f"retrieval_{how}"] += 1
                    s["examples"] = examples
                finals.append(self.prompts.final(s["T"], cat_answer.strip(), examples))
            self._ask(states, finals)
        out = []
        for s in states:
            clip = s["clip"]
            self.transcripts[clip.name] = s["messages"]
            if s["error"] is not None:
                s["messages"].append({"role": "error", "text": str(s["error"]), "audio": False})
                out.append(self._fallback(clip, "backend_error"))
                continue
            try:
                c = parse_control_points(s["messages"][-1]["text"], s["T"], self.parse_stats)
            except ControlPointParseError:
                out.append(self._fallback(clip, "parse_error"))
                continue
            self.stats["llm"] += 1
            out.append(c)
        return out

    def _retrieve(self, clip: Clip, category_answer: str):
        if self.store is None:
            return [], "none"
        from coprop.controlpoints.features import clip_embedding, clip_logmel

        return self.store.lookup(category_answer, k=self.k, exclude=clip.name,
                                 embedding=clip_embedding(clip_logmel(clip)), length=clip.num_frames)

    def report(self) -> dict:
        """Counters of the source, the parser and the backend, for tables and metrics.json."""
        out = {f"rcpg_{k}": int(v) for k, v in self.stats.items()}
        out.update({f"parse_{k}": v for k, v in self.parse_stats.as_dict().items()})
        if self.backend is not None:
            out.update({f"backend_{k}": int(v) for k, v in self.backend.stats.items()})
        return out
