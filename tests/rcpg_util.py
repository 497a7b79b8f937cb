"""Test helpers for the RCPG tests: tiny clips whose sound and masks change together, and a loopback
chat-completions server (http.server in a thread) with switchable behaviour."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from coprop.data.clip import Clip, avsbench_frame_times

SR = 16000


def make_clip(name: str, schedule: list[tuple[float, float, str]], T: int = 5, seed: int = 0,
              size: int = 16, category: str | None = None) -> Clip:
    """``schedule``: (start_s, end_s, source) with sources 'low' (300 Hz tone), 'high' (3 kHz tone), 'noise'
    or 'silence'. Each source has its own box in the masks, so GT control points follow the audio."""
    rng = np.random.default_rng(seed)
    n = T * SR
    t = np.arange(n) / SR
    wav = 0.003 * rng.standard_normal(n)
    boxes = {"low": (0, 8), "high": (8, 16), "noise": (4, 12)}
    for start, end, src in schedule:
        sl = slice(int(start * SR), int(end * SR))
        if src == "low":
            wav[sl] += 0.5 * np.sin(2 * np.pi * 300 * t[sl])
        elif src == "high":
            wav[sl] += 0.5 * np.sin(2 * np.pi * 3000 * t[sl])
        elif src == "noise":
            wav[sl] += 0.3 * rng.standard_normal(sl.stop - sl.start)
    times = avsbench_frame_times(T)
    masks = np.zeros((T, size, size), np.int64)
    sounding = []
    for k, ft in enumerate(times):
        srcs = sorted({s for a, b, s in schedule if a <= ft < b and s != "silence"})
        sounding.append(srcs)
        for s in srcs:
            lo, hi = boxes[s]
            masks[k, lo:hi, lo:hi] = 1
    meta = {"name": name, "subset": "ms3", "split": "test", "mode": "binary", "sounding": sounding,
            "category": category or "", "synthetic": True}
    frames = np.zeros((T, size, size, 3), np.uint8)
    return Clip(frames=frames, waveform=wav.astype(np.float32), frame_times=times, masks=masks, meta=meta)


def toy_clips(n: int, seed: int = 0, T: int = 5) -> list[Clip]:
    """n clips: half constant (one source throughout), half with one switch at a random time."""
    rng = np.random.default_rng(seed)
    clips = []
    srcs = ["low", "high", "noise"]
    for i in range(n):
        a, b = rng.choice(3, 2, replace=False)
        if i % 2 == 0:
            sched = [(0.0, T, srcs[a])]
        else:
            cut = float(rng.uniform(1.2, T - 0.8))
            sched = [(0.0, cut, srcs[a]), (cut, T, srcs[b])]
        clips.append(make_clip(f"toy-{seed}-{i:03d}", sched, T=T, seed=seed * 1000 + i))
    return clips


class FakeChatServer:
    """Speaks POST /v1/chat/completions. ``mode``: 'ok', 'garbage', 'slow', 'flaky' (first ``fail_first``
    requests get HTTP 503), 'bad_request' (HTTP 400). Streams SSE when the request asks for it.
    Answers: Q1 -> a description, Q2 -> ``category_answer``, final -> ``final_answer``."""

    def __init__(self, mode: str = "ok", final_answer: str = "Sure: [1, 0, 0, 1, 0]", category_answer: str = "Dogs!",
                 delay: float = 1.0, fail_first: int = 0):
        self.mode, self.final_answer, self.category_answer = mode, final_answer, category_answer
        self.delay, self.fail_first = delay, fail_first
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(self.headers)   # HTTP header names are case-insensitive: so is this
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.mode == "flaky" and len(server.requests) <= server.fail_first:
                    return self._send(503, b'{"error": "overloaded"}')
                if server.mode == "bad_request":
                    return self._send(400, b'{"error": "bad audio"}')
                if server.mode == "garbage":
                    return self._send(200, b"<html>this is not json</html>")
                answer = server.answer(body)
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    pieces = [answer[i:i + 4] for i in range(0, len(answer), 4)]
                    for p in pieces:
                        chunk = {"choices": [{"index": 0, "delta": {"content": p}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b'data: {"choices": [], "usage": {"total_tokens": 9}}\n\n')
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                doc = {"id": "x", "object": "chat.completion",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                    "finish_reason": "stop"}]}
                self._send(200, json.dumps(doc).encode())

            def _send(self, code, payload):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, body: dict) -> str:
        users = [m for m in body["messages"] if m["role"] == "user"]
        last = users[-1]["content"]
        text = last if isinstance(last, str) else " ".join(p.get("text", "") for p in last if p["type"] == "text")
        if "list" in text:
            return self.final_answer
        if "category" in text:
            return self.category_answer
        return "A dog barks, then a car passes by."

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
