"""OpenAI-compatible chat server backend (POST {base_url}/chat/completions) with audio input.

Profiles (reference/models-offline.md §3):
  'vllm'       audio part ``{"type": "input_audio", "input_audio": {"data": <bare base64 wav>, "format": "wav"}}``;
               streaming optional (off by default).
  'dashscope'  Alibaba compatible mode (Qwen-Omni): ``data`` is ``"data:;base64,<b64>"``; streaming is
               mandatory, with ``modalities=["text"]`` and ``stream_options={"include_usage": true}``.
  'auto'       'dashscope' when the base URL mentions dashscope/aliyuncs, else 'vllm'.
Transport is the standard library (urllib). Connection failures, timeouts, HTTP 429 and 5xx are retried
with exponential backoff (backoff * 2**attempt seconds); other HTTP errors and answers that are not chat
completions fail at once. Once a request has exhausted its retries the server counts as down for
``down_cooldown`` seconds: later requests fail at once (counted 'skipped_down') instead of each waiting
through its own retries, so a dead server costs one retry cycle, not one per clip and turn.
"""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import urllib.error
import urllib.request
import wave
from typing import Sequence

import numpy as np

from coprop.controlpoints.llm import ChatRequest, LLMBackend, LLMError, LLMUnavailable
from coprop.errors import ConfigError

PROFILES = ("vllm", "dashscope")
SAMPLE_RATE = 16000


def wav_bytes(audio: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV of a float waveform in [-1, 1]."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def audio_part(audio: np.ndarray, profile: str) -> dict:
    b64 = base64.b64encode(wav_bytes(audio)).decode("ascii")
    data = b64 if profile == "vllm" else f"data:;base64,{b64}"
    return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}


def resolve_profile(profile: str, base_url: str) -> str:
    if profile == "auto":
        return "dashscope" if ("dashscope" in base_url or "aliyuncs" in base_url) else "vllm"
    if profile not in PROFILES:
        raise ConfigError(f"unknown chat-server profile {profile!r}; choose 'auto', 'vllm' or 'dashscope'")
    return profile


class ChatServerBackend(LLMBackend):
    kind = "http"

    def __init__(self, base_url: str, model: str = "", profile: str = "auto", api_key_env: str = "",
                 api_key: str | None = None, timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
                 stream: bool | None = None, max_tokens: int = 256, temperature: float = 0.0,
                 down_cooldown: float = 30.0, cache=None):
        if not base_url:
            raise ConfigError("the http backend needs base_url, e.g. http://127.0.0.1:8000/v1 (vLLM) or "
                              "https://dashscope-intl.aliyuncs.com/compatible-mode/v1")
        self.base_url = base_url.rstrip("/")
        self.profile = resolve_profile(profile, self.base_url)
        super().__init__(model or "default", cache)
        if api_key is None and api_key_env:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ConfigError(f"environment variable {api_key_env} (the API key for {self.base_url}) is not set")
        self.api_key = api_key
        self.stream = (self.profile == "dashscope") if stream is None else bool(stream)
        if self.profile == "dashscope" and not self.stream:
            raise ConfigError("DashScope compatible mode requires streaming; leave stream=None or set True")
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self.max_tokens, self.temperature = int(max_tokens), float(temperature)
        self.down_cooldown = float(down_cooldown)
        self._down: tuple[float, str] | None = None  # (when, why) of the last exhausted retry cycle

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def params(self) -> dict:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "profile": self.profile}

    def payload(self, request: ChatRequest) -> dict:
        msgs = []
        for m in request.messages:
            if m["role"] == "user":
                content = [audio_part(request.audio, self.profile)] if m.get("audio") else []
                content.append({"type": "text", "text": m["text"]})
            else:
                content = m["text"]
            msgs.append({"role": m["role"], "content": content})
        body = {"model": self.model, "messages": msgs, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "stream": self.stream}
        if self.profile == "dashscope":
            body["modalities"] = ["text"]
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _generate(self, requests: Sequence[ChatRequest]) -> list:
        out = []
        for r in requests:
            try:
                out.append(self._post(self.payload(r)))
            except LLMError as e:
                out.append(e)
        return out

    def _post(self, body: dict) -> str:
        if self._down is not None:
            when, why = self._down
            if time.monotonic() - when < self.down_cooldown:
                self.stats["skipped_down"] += 1
                raise LLMUnavailable(f"{why} (server marked down {time.monotonic() - when:.0f} s ago; "
                                     f"retrying after {self.down_cooldown:.0f} s)")
            self._down = None
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return self._read_stream(resp) if self.stream else self._read_json(resp.read())
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                if e.code == 429 or e.code >= 500:
                    last = f"HTTP {e.code}: {detail}"
                    continue
                raise LLMError(f"{self.url} refused the request: HTTP {e.code}: {detail}") from None
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                last = f"{type(reason).__name__}: {reason}"
                continue
        why = (f"no answer from the chat server at {self.url} after {self.retries + 1} tries (last: {last}). "
               f"Is the server running? Start one with e.g. `vllm serve /models/Qwen2-Audio-7B-Instruct`, "
               f"or check base_url")
        self._down = (time.monotonic(), why)
        raise LLMUnavailable(why)

    def _read_json(self, raw: bytes) -> str:
        try:
            doc = json.loads(raw)
            content = doc["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{self.url} did not answer a chat completion: {raw[:300]!r}") from None
        if not isinstance(content, str):
            raise LLMError(f"{self.url} answered non-text content: {content!r:.300}")
        return content

    def _read_stream(self, resp) -> str:
        parts, events = [], 0
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise LLMError(f"{self.url} sent a stream event that is not JSON: {data[:300]!r}") from None
            if isinstance(chunk, dict) and "error" in chunk:
                raise LLMError(f"{self.url} streamed an error: {chunk['error']!r:.300}")
            events += 1
            for choice in (chunk.get("choices") or []) if isinstance(chunk, dict) else []:
                piece = (choice.get("delta") or {}).get("content")
                if isinstance(piece, str):
                    parts.append(piece)
        if not events:
            raise LLMError(f"{self.url} sent no chat-completion stream events")
        return "".join(parts)
