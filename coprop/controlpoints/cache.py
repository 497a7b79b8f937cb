"""LLM responses on disk, keyed by (backend, model, prompt, audio hash, generation settings).

A re-run of a notebook with the same prompts and audio reads every answer back and sends nothing.
One small JSON file per response under ``<dir>/<key[:2]>/<key>.json``, written atomically.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from coprop.io import write_json
from coprop.paths import data_dir


def default_cache_dir() -> Path:
    return data_dir() / "llm-cache"


def audio_hash(audio: np.ndarray | None) -> str:
    if audio is None:
        return "none"
    a = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
    return hashlib.sha256(a.tobytes()).hexdigest()


def cache_key(backend: str, model: str, messages: list[dict], audio: np.ndarray | None,
              params: dict[str, Any] | None = None) -> str:
    doc = {"backend": backend, "model": model, "messages": messages, "audio": audio_hash(audio),
           "params": params or {}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    def __init__(self, directory: str | Path | None = None):
        self.dir = Path(directory) if directory else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return str(json.loads(path.read_text())["response"])
        except (ValueError, KeyError, OSError):
            return None  # a damaged entry is a miss; it is overwritten by the next answer

    def put(self, key: str, response: str, **info: Any) -> None:
        write_json(self._path(key), {"response": response, **info})

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.json")) if self.dir.is_dir() else 0
