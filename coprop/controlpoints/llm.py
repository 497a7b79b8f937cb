"""LLM backends for RCPG behind one interface: a chat of text turns about one audio clip, answered as text.

A request is a list of messages ``{"role": "user"|"assistant", "text": str, "audio": bool}`` (the user
turn with ``audio=True`` carries the clip's 16 kHz mono waveform) plus that waveform. Backends:
  'local'  llm_local.LocalQwenBackend — Qwen2-Audio / Qwen2.5-Omni / Qwen3-Omni thinker from a local folder;
  'http'   llm_http.ChatServerBackend — any OpenAI-compatible chat server with audio input (vLLM, DashScope).
Every backend caches answers on disk (cache.py) and counts requests, cache hits and errors in ``stats``.
The backends import this module; it names them as 'module:Class' strings resolved on first use, so this base
never imports an implementation (and transformers / the HTTP client load only for the backend asked for).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pkgutil import resolve_name
from typing import Any, Sequence

import numpy as np

from coprop.controlpoints.cache import ResponseCache, cache_key
from coprop.errors import ConfigError, CopropError

# kind -> the class implementing it; make_backend imports the module when the kind is first asked for
REGISTRY = {
    "local": "coprop.controlpoints.llm_local:LocalQwenBackend",
    "http": "coprop.controlpoints.llm_http:ChatServerBackend",
}
BACKENDS = tuple(REGISTRY)


class LLMError(CopropError):
    """A request failed: the server answered an error or something that is not a chat completion."""


class LLMUnavailable(LLMError):
    """The backend cannot be reached at all (server down, connection refused, timeouts on every try)."""


@dataclass
class ChatRequest:
    messages: list[dict]
    audio: np.ndarray | None


def user(text: str, audio: bool = False) -> dict:
    return {"role": "user", "text": text, "audio": bool(audio)}


def assistant(text: str) -> dict:
    return {"role": "assistant", "text": text, "audio": False}


class LLMBackend(ABC):
    """Base: caching and counting. Subclasses implement ``_generate(requests) -> list[str | Exception]``."""

    kind = "base"

    def __init__(self, model: str, cache: ResponseCache | str | None | bool = None):
        self.model = model
        if cache is False:
            self.cache = None
        else:
            self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache or None)
        self.stats: Counter = Counter()

    def params(self) -> dict[str, Any]:
        """Generation settings that change the answer (part of the cache key)."""
        return {}

    @abstractmethod
    def _generate(self, requests: Sequence[ChatRequest]) -> list:
        """Implemented by each subclass."""

    def chat(self, messages: list[dict], audio: np.ndarray | None) -> str:
        out = self.chat_batch([ChatRequest(messages, audio)], return_exceptions=False)
        return out[0]

    def chat_batch(self, requests: Sequence[ChatRequest], return_exceptions: bool = True) -> list:
        """One answer per request (cached answers are not regenerated). Failed requests give their exception
        when ``return_exceptions``, else the first failure is raised."""
        out: list = [None] * len(requests)
        keys, todo = [], []
        for i, r in enumerate(requests):
            key = cache_key(self.kind, self.model, r.messages, r.audio, self.params())
            keys.append(key)
            hit = self.cache.get(key) if self.cache is not None else None
            self.stats["requests"] += 1
            if hit is not None:
                self.stats["cache_hits"] += 1
                out[i] = hit
            else:
                todo.append(i)
        if todo:
            answers = self._generate([requests[i] for i in todo])
            for i, ans in zip(todo, answers):
                if isinstance(ans, Exception):
                    self.stats["errors"] += 1
                else:
                    self.stats["generated"] += 1
                    if self.cache is not None:
                        self.cache.put(keys[i], ans, backend=self.kind, model=self.model)
                out[i] = ans
        if not return_exceptions:
            for ans in out:
                if isinstance(ans, Exception):
                    raise ans
        return out


def make_backend(kind: str, **kw) -> LLMBackend | None:
    """'' -> None (no backend configured); 'local' -> LocalQwenBackend(model_path, ...);
    'http' -> ChatServerBackend(base_url, model, ...)."""
    kind = (kind or "").strip().lower()
    if not kind:
        return None
    if kind not in REGISTRY:
        raise ConfigError(f"unknown LLM backend {kind!r}; choose '' (none), 'local' or 'http'")
    return resolve_name(REGISTRY[kind])(**kw)
