"""OpenAI-compatible chat server backend (POST {base_url}/chat/completions) with audio input.

Profiles (reference/models-offline.md §3):
  'vllm'       audio part ``{"type": "input_audio", "input_audio": {"data": <bare base64 wav>, "format": "wav"}}``;
               streaming optional (off by default).
  'dashscope'  Alibaba compatible mode (Qwen-Omni): ``data`` is ``"data:;base64,<b64>"``; streaming is
               mandatory, with ``modalities=["text"]`` and ``stream_options={"include_usage": true}``.
  'auto'       'dashscope' when the base URL mentions dashscope/aliyuncs, else 'vllm'.
The client is the ``openai`` SDK (``OpenAI(base_url, api_key, timeout, max_retries)``, streaming chunks): it
retries connection failures, timeouts, HTTP 408/409/429 and 5xx ``retries`` times with its exponential back-off
(about 0.5 s, 1 s, 2 s ..., honouring Retry-After); other HTTP errors and answers that are not chat completions
fail at once. Once a request has exhausted its retries the server counts as down for ``down_cooldown`` seconds:
later requests fail at once (counted 'skipped_down') instead of each waiting through its own retries, so a dead
server costs one retry cycle, not one per clip and turn. ``stats['retries']`` counts the SDK's retries.
"""
from __future__ import annotations

import base64
import io
import os
import time
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
    """The message part carrying the clip's audio as a WAV: bare base64 for vLLM, a data URL for DashScope."""
    b64 = base64.b64encode(wav_bytes(audio)).decode("ascii")
    data = b64 if profile == "vllm" else f"data:;base64,{b64}"
    return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}


def resolve_profile(profile: str, base_url: str) -> str:
    """'auto' -> 'dashscope' for DashScope / Aliyun URLs, else 'vllm'; raises ConfigError for unknown profiles."""
    if profile == "auto":
        return "dashscope" if ("dashscope" in base_url or "aliyuncs" in base_url) else "vllm"
    if profile not in PROFILES:
        raise ConfigError(f"unknown chat-server profile {profile!r}; choose 'auto', 'vllm' or 'dashscope'")
    return profile


class ChatServerBackend(LLMBackend):
    """RCPG's LLM over any OpenAI-compatible chat server with audio input (vLLM, DashScope compatible mode).

    ``api_key`` (or the environment variable named by ``api_key_env``) is sent as the bearer token; without one
    the SDK gets the placeholder 'EMPTY' (vLLM's convention), never the caller's OPENAI_API_KEY. ``timeout``:
    seconds per attempt; ``retries``: the SDK's max_retries. Raises ConfigError for a missing base_url or key."""

    kind = "http"

    def __init__(self, base_url: str, model: str = "", profile: str = "auto", api_key_env: str = "",
                 api_key: str | None = None, timeout: float = 60.0, retries: int = 3,
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
        self.timeout, self.retries = float(timeout), int(retries)
        self.max_tokens, self.temperature = int(max_tokens), float(temperature)
        self.down_cooldown = float(down_cooldown)
        self._down: tuple[float, str] | None = None  # (when, why) of the last exhausted retry cycle
        self._client = None                           # the openai.OpenAI client, made on first use

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def client(self):
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY", timeout=self.timeout,
                                  max_retries=self.retries)
        return self._client

    def params(self) -> dict:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "profile": self.profile}

    def payload(self, request: ChatRequest) -> dict:
        """The chat-completions request body of ``request`` (audio with the first user turn that asks for it)."""
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
        import openai

        if self._down is not None:
            when, why = self._down
            if time.monotonic() - when < self.down_cooldown:
                self.stats["skipped_down"] += 1
                raise LLMUnavailable(f"{why} (server marked down {time.monotonic() - when:.0f} s ago; "
                                     f"retrying after {self.down_cooldown:.0f} s)")
            self._down = None
        body = dict(body)
        # 'modalities' is DashScope's field: sent as given, whatever this SDK version knows of it
        extra = {"modalities": body.pop("modalities")} if "modalities" in body else None
        try:
            raw = self.client.chat.completions.with_raw_response.create(**body, extra_body=extra)
        except openai.APIStatusError as e:
            self.stats["retries"] += self._retries_of(e.response.request)
            detail = f"HTTP {e.status_code}: {e.response.text[:300]}"
            if e.status_code in (408, 409, 429) or e.status_code >= 500:   # retried by the SDK until it gave up
                raise self._down_now(detail) from None
            raise LLMError(f"{self.url} refused the request: {detail}") from None
        except openai.APIConnectionError as e:                              # timeouts included
            self.stats["retries"] += self._retries_of(e.request)
            cause = e.__cause__ or e
            raise self._down_now(f"{type(cause).__name__}: {cause}") from None
        self.stats["retries"] += raw.retries_taken
        try:
            answer = raw.parse()
            return self._read_stream(answer) if self.stream else self._read_completion(answer)
        except LLMError:
            raise
        except (openai.APIError, ValueError, AttributeError, TypeError, IndexError) as e:
            # not JSON, JSON that is no chat completion, or an error event inside the stream
            text = f"{e}" if self.stream else raw.http_response.text[:300]
            raise LLMError(f"{self.url} did not answer a chat completion: {text!r}") from None

    def _retries_of(self, request) -> int:
        """Retries the SDK made before giving up, from the retry count it stamps on each attempt's headers."""
        try:
            return int(request.headers.get("x-stainless-retry-count", self.retries))
        except (AttributeError, ValueError):
            return self.retries

    def _down_now(self, last: str) -> LLMUnavailable:
        """Mark the server down for ``down_cooldown`` seconds; the error to raise, naming what to check."""
        why = (f"no answer from the chat server at {self.url} after {self.retries + 1} tries (last: {last}). "
               f"Is the server running? Start one with e.g. `vllm serve /models/Qwen2-Audio-7B-Instruct`, "
               f"or check base_url")
        self._down = (time.monotonic(), why)
        return LLMUnavailable(why)

    def _read_completion(self, completion) -> str:
        content = completion.choices[0].message.content
        if not isinstance(content, str):
            raise LLMError(f"{self.url} answered non-text content: {content!r:.300}")
        return content

    def _read_stream(self, chunks) -> str:
        parts, events = [], 0
        for chunk in chunks:
            events += 1
            for choice in chunk.choices or []:
                piece = getattr(choice.delta, "content", None)
                if isinstance(piece, str):
                    parts.append(piece)
        if not events:
            raise LLMError(f"{self.url} sent no chat-completion stream events")
        return "".join(parts)
