"""Local transformers backend: Qwen2-Audio, or the text 'thinker' of Qwen2.5-Omni / Qwen3-Omni, from a folder.

Notes from reference/models-offline.md §1: audio goes in as ``audio=`` (``audios=`` is ignored on 4.57 and
raises on 5.x); the chat template inserts the audio markers; generation is stateless, so every turn
re-renders the whole conversation with the same audio; batched generation needs left padding; audio
longer than the processor's chunk is cut silently, so it is counted here.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from coprop.controlpoints.llm import ChatRequest, LLMBackend, LLMError
from coprop.errors import WeightsError

SAMPLE_RATE = 16000
# config.json model_type -> transformers class producing text from audio
MODEL_CLASSES = {
    "qwen2_audio": "Qwen2AudioForConditionalGeneration",
    "qwen2_5_omni": "Qwen2_5OmniThinkerForConditionalGeneration",
    "qwen2_5_omni_thinker": "Qwen2_5OmniThinkerForConditionalGeneration",
    "qwen3_omni_moe": "Qwen3OmniMoeThinkerForConditionalGeneration",
    "qwen3_omni_moe_thinker": "Qwen3OmniMoeThinkerForConditionalGeneration",
}
HOW_TO_GET = ("download it on a machine with internet, e.g. `huggingface-cli download "
              "Qwen/Qwen2-Audio-7B-Instruct --local-dir <folder>` (or Qwen/Qwen2.5-Omni-7B), copy the folder "
              "here and pass its path as model_path; coprop never downloads weights")


def check_model_folder(model_path: str | Path) -> str:
    """The folder's model_type, or WeightsError naming the folder and how to get the weights."""
    path = Path(model_path) if model_path else None
    if path is None or not path.is_dir():
        raise WeightsError(f"{model_path or '<empty model_path>'}: model folder not found; {HOW_TO_GET}")
    cfg = path / "config.json"
    if not cfg.is_file():
        raise WeightsError(f"{path}: no config.json in the model folder; {HOW_TO_GET}")
    model_type = json.loads(cfg.read_text()).get("model_type", "")
    if model_type not in MODEL_CLASSES:
        raise WeightsError(f"{cfg}: model_type {model_type!r} is not an audio LLM coprop can run "
                           f"(supported: {', '.join(MODEL_CLASSES)})")
    return model_type


class LocalQwenBackend(LLMBackend):
    kind = "local"

    def __init__(self, model_path: str, device: str = "auto", dtype: str = "auto", max_new_tokens: int = 128,
                 batch_size: int = 4, cache=None, model_name: str | None = None):
        self.model_type = check_model_folder(model_path)
        self.path = Path(model_path)
        super().__init__(model_name or self.path.name, cache)
        self.device_name, self.dtype_name = device, dtype
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))
        self._model = None
        self._proc = None

    def params(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "do_sample": False}

    def load(self):
        if self._model is not None:
            return self._model, self._proc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        import transformers

        device = self.device_name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.dtype_name
        if dtype == "auto":
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        cls = getattr(transformers, MODEL_CLASSES[self.model_type])
        try:
            proc = transformers.AutoProcessor.from_pretrained(self.path, local_files_only=True)
            model = cls.from_pretrained(self.path, dtype=dtype, local_files_only=True).to(device).eval()
        except (OSError, ValueError) as e:
            raise WeightsError(f"{self.path}: cannot load the model or processor ({e}); {HOW_TO_GET}") from e
        proc.tokenizer.padding_side = "left"
        self._model, self._proc, self.device = model, proc, device
        return model, proc

    def conversation(self, messages: list[dict], audio: np.ndarray) -> list[dict]:
        conv = []
        for m in messages:
            if m["role"] == "user":
                content = [{"type": "audio", "audio": audio}] if m.get("audio") else []
                content.append({"type": "text", "text": m["text"]})
            else:
                content = [{"type": "text", "text": m["text"]}]
            conv.append({"role": m["role"], "content": content})
        return conv

    def render(self, messages: list[dict], audio: np.ndarray) -> str:
        _, proc = self.load()
        return proc.apply_chat_template(self.conversation(messages, audio), add_generation_prompt=True,
                                        tokenize=False)

    def _generate(self, requests: Sequence[ChatRequest]) -> list:
        out: list = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start:start + self.batch_size]
            try:
                out += self._generate_batch(chunk)
            except (RuntimeError, ValueError) as e:  # e.g. out of memory, a malformed conversation
                err = LLMError(f"local model {self.path} failed on a batch of {len(chunk)}: {e}")
                out += [err] * len(chunk)
        return out

    def _generate_batch(self, chunk: Sequence[ChatRequest]) -> list[str]:
        import torch

        model, proc = self.load()
        limit = getattr(proc.feature_extractor, "n_samples", None)
        texts, audios = [], []
        for r in chunk:
            wav = np.asarray(r.audio, dtype=np.float32)
            if limit and len(wav) > limit:
                self.stats["audio_truncated"] += 1
                warnings.warn(f"audio of {len(wav) / SAMPLE_RATE:.1f} s is longer than the model's "
                              f"{limit / SAMPLE_RATE:.0f} s window; the processor cuts the rest", stacklevel=3)
            texts.append(self.render(r.messages, wav))
            audios += [wav] * sum(1 for m in r.messages if m["role"] == "user" and m.get("audio"))
        inputs = proc(text=texts, audio=audios, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True)
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = ids[:, inputs["input_ids"].shape[1]:]
        self.stats["batches"] += 1
        return [t.strip() for t in proc.batch_decode(new, skip_special_tokens=True)]
