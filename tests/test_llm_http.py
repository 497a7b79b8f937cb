"""The OpenAI-compatible backend against a real chat-completions server on 127.0.0.1 (see rcpg_util)."""
from __future__ import annotations

import base64
import io
import socket
import time
import wave

import numpy as np
import pytest
from rcpg_util import FakeChatServer, make_clip, toy_clips

from coprop.controlpoints.detectors import CosineSource
from coprop.controlpoints.llm import LLMError, LLMUnavailable, make_backend, user
from coprop.controlpoints.llm_http import ChatServerBackend
from coprop.controlpoints.rcpg import RCPGSource
from coprop.controlpoints.retrieval import RetrievalStore
from coprop.errors import ConfigError

AUDIO = (0.1 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)


def _wav_of(data: str) -> tuple[int, int, int]:
    with wave.open(io.BytesIO(base64.b64decode(data))) as w:
        return w.getnchannels(), w.getframerate(), w.getnframes()


def test_vllm_request_shape(tmp_path):
    with FakeChatServer() as srv:
        be = ChatServerBackend(srv.base_url, model="Qwen2-Audio-7B-Instruct", profile="vllm", cache=tmp_path)
        msgs = [user("Describe the audio.", audio=True), {"role": "assistant", "text": "A dog.", "audio": False},
                user("Name its sound category.")]
        assert be.chat(msgs, AUDIO) == "Dogs!"
    body = srv.requests[0]
    assert body["model"] == "Qwen2-Audio-7B-Instruct" and body["stream"] is False and body["temperature"] == 0
    first = body["messages"][0]["content"]
    assert first[0]["type"] == "input_audio" and first[0]["input_audio"]["format"] == "wav"
    data = first[0]["input_audio"]["data"]
    assert not data.startswith("data:")  # vLLM wants bare base64
    assert _wav_of(data) == (1, 16000, len(AUDIO))
    assert first[1] == {"type": "text", "text": "Describe the audio."}
    assert body["messages"][1] == {"role": "assistant", "content": "A dog."}
    assert body["messages"][2]["content"] == [{"type": "text", "text": "Name its sound category."}]
    assert "modalities" not in body


def test_dashscope_request_shape_streaming_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("RCPG_TEST_KEY", "sk-test")
    with FakeChatServer(final_answer="[1, 0, 1, 0, 0] is the list") as srv:
        be = ChatServerBackend(srv.base_url, model="qwen-omni-turbo", profile="dashscope",
                               api_key_env="RCPG_TEST_KEY", cache=tmp_path)
        out = be.chat([user("Please output the list.", audio=True)], AUDIO)
    assert out == "[1, 0, 1, 0, 0] is the list"  # reassembled from 4-character SSE deltas
    body = srv.requests[0]
    assert body["stream"] is True and body["modalities"] == ["text"]
    assert body["stream_options"] == {"include_usage": True}
    data = body["messages"][0]["content"][0]["input_audio"]["data"]
    assert data.startswith("data:;base64,")
    assert _wav_of(data[len("data:;base64,"):])[1] == 16000
    assert srv.headers[0]["Authorization"] == "Bearer sk-test"


def test_profile_auto_and_config_errors(monkeypatch):
    assert ChatServerBackend("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", cache=False).profile == "dashscope"
    assert ChatServerBackend("http://127.0.0.1:8000/v1", cache=False).profile == "vllm"
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        ChatServerBackend("http://127.0.0.1:8000/v1", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(ConfigError, match="base_url"):
        make_backend("http", base_url="")
    with pytest.raises(ConfigError):
        make_backend("telepathy")
    assert make_backend("") is None


def test_cache_second_run_makes_no_requests(tmp_path):
    with FakeChatServer() as srv:
        for _ in range(2):
            be = ChatServerBackend(srv.base_url, model="m", cache=tmp_path / "cache")
            assert be.chat([user("Name its sound category.", audio=True)], AUDIO) == "Dogs!"
        assert len(srv.requests) == 1
        assert be.stats["cache_hits"] == 1 and be.stats["generated"] == 0
        # a different audio or prompt is a different key
        be.chat([user("Name its sound category.", audio=True)], AUDIO * 0.5)
        assert len(srv.requests) == 2


def test_retries_with_backoff_then_success(tmp_path):
    with FakeChatServer(mode="flaky", fail_first=2) as srv:
        be = ChatServerBackend(srv.base_url, retries=3, cache=False)
        t0 = time.perf_counter()
        assert be.chat([user("Name its sound category.", audio=True)], AUDIO) == "Dogs!"
        assert time.perf_counter() - t0 >= 0.05 + 0.1  # two waits (the SDK backs off about 0.5 s, then 1 s)
    assert be.stats["retries"] == 2 and len(srv.requests) == 3


def test_slow_server_times_out():
    with FakeChatServer(mode="slow", delay=1.5) as srv:
        be = ChatServerBackend(srv.base_url, timeout=0.2, retries=1, cache=False)
        with pytest.raises(LLMUnavailable, match="after 2 tries"):
            be.chat([user("hi", audio=True)], AUDIO)


def test_server_down_is_a_clear_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    be = ChatServerBackend(f"http://127.0.0.1:{port}/v1", retries=1, timeout=2, cache=False)
    with pytest.raises(LLMUnavailable) as e:
        be.chat([user("hi", audio=True)], AUDIO)
    assert f"127.0.0.1:{port}/v1/chat/completions" in str(e.value) and "Is the server running" in str(e.value)
    # the next request fails at once instead of waiting through its own retries
    t0 = time.perf_counter()
    with pytest.raises(LLMUnavailable, match="marked down"):
        be.chat([user("again", audio=True)], AUDIO)
    assert time.perf_counter() - t0 < 0.5 and be.stats["skipped_down"] == 1 and be.stats["retries"] == 1


def test_garbage_and_client_errors_fail_without_retry():
    with FakeChatServer(mode="garbage") as srv:
        be = ChatServerBackend(srv.base_url, retries=3, cache=False)
        with pytest.raises(LLMError, match="did not answer a chat completion"):
            be.chat([user("hi", audio=True)], AUDIO)
        assert len(srv.requests) == 1
    with FakeChatServer(mode="bad_request") as srv:
        be = ChatServerBackend(srv.base_url, retries=3, cache=False)
        with pytest.raises(LLMError, match="HTTP 400"):
            be.chat([user("hi", audio=True)], AUDIO)
        assert len(srv.requests) == 1


def _rcpg(backend, variant="3-step+retrieval"):
    src = RCPGSource(backend=backend, variant=variant, fallback=CosineSource(fit_threshold=False), k=2)
    store = RetrievalStore(synonyms={"puppy": "dog"})
    store.add("train-dog-1", "dog", [1, 0, 0, 1, 0])
    store.add("train-dog-2", "dog", [1, 0, 0, 0, 0])
    store.add("clip-a", "dog", [1, 1, 1, 1, 1])  # same name as a test clip: must never be retrieved for it
    store.add("train-car-1", "car", [1, 0, 1, 0, 0])
    src.store = store
    return src


def test_rcpg_three_step_retrieval_flow(tmp_path):
    clip = make_clip("clip-a", [(0, 2.5, "low"), (2.5, 5, "high")])
    with FakeChatServer() as srv:
        be = ChatServerBackend(srv.base_url, model="m", cache=tmp_path)
        src = _rcpg(be)
        assert src(clip) == [1, 0, 0, 1, 0]
        assert len(srv.requests) == 3  # describe, category, final
        final = srv.requests[2]["messages"]
        assert [m["role"] for m in final] == ["user", "assistant", "user", "assistant", "user"]
        text = final[-1]["content"][0]["text"]
        assert "[1, 0, 0, 1, 0]" in text and "[1, 0, 0, 0, 0]" in text  # the two dog examples
        assert "[1, 1, 1, 1, 1]" not in text  # never itself
        assert "divided into five frames" in text and "to the fifth frame" in text
        # the audio travels only with the first user turn
        assert sum(p["type"] == "input_audio" for m in final if m["role"] == "user"
                   for p in m["content"]) == 1
        assert src.stats["llm"] == 1 and src.stats["retrieval_category"] == 1 and src.stats["fallback"] == 0
        # re-running the notebook: everything from the cache
        src2 = _rcpg(ChatServerBackend(srv.base_url, model="m", cache=tmp_path))
        assert src2(clip) == [1, 0, 0, 1, 0] and len(srv.requests) == 3


def test_rcpg_one_step_is_one_request(tmp_path):
    clip = make_clip("clip-b", [(0, 5, "low")])
    with FakeChatServer(final_answer="[1,0,0,0,0]") as srv:
        src = _rcpg(ChatServerBackend(srv.base_url, cache=tmp_path), variant="1-step")
        assert src(clip) == [1, 0, 0, 0, 0]
        assert len(srv.requests) == 1 and src.stats["llm"] == 1


@pytest.mark.parametrize("mode", ["garbage", "slow", "down", "unparseable"])
def test_rcpg_keeps_running_on_fallback(mode, tmp_path):
    clips = toy_clips(3, seed=1)
    fallback_lists = [CosineSource(fit_threshold=False)(c) for c in clips]
    srv = FakeChatServer(mode="ok" if mode in ("down", "unparseable") else mode, delay=1.0,
                         final_answer="I am not sure, sorry.")
    with srv:
        url = srv.base_url
        if mode == "down":
            srv.httpd.shutdown()
            srv.httpd.server_close()
        be = ChatServerBackend(url, timeout=0.3, retries=0, cache=tmp_path, down_cooldown=0)
        src = _rcpg(be)
        got = src.predict_many(clips)
    assert got == fallback_lists
    assert src.stats["fallback"] == 3
    key = "parse_error" if mode == "unparseable" else "backend_error"
    assert src.stats[key] == 3
    if mode == "unparseable":
        assert src.parse_stats["rejected"] == 3
    rep = src.report()
    assert rep["rcpg_fallback"] == 3


def test_dead_server_costs_one_retry_cycle_not_one_per_clip(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    be = ChatServerBackend(f"http://127.0.0.1:{port}/v1", retries=2, cache=tmp_path)
    src = _rcpg(be)
    clips = toy_clips(4, seed=2)
    assert src.predict_many(clips) == [CosineSource(fit_threshold=False)(c) for c in clips]
    assert be.stats["retries"] == 2 and be.stats["skipped_down"] == 3
    assert src.stats["backend_error"] == 4 and src.stats["fallback"] == 4
