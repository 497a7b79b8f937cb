"""The local transformers backend with a real tiny random Qwen2-Audio built offline
(reference/models-offline.md §2): real processor, real chat template, real ``generate``."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from rcpg_util import make_clip

from coprop.controlpoints.detectors import CosineSource
from coprop.controlpoints.llm import assistant, make_backend, user
from coprop.controlpoints.llm_local import LocalQwenBackend, check_model_folder
from coprop.controlpoints.rcpg import RCPGSource
from coprop.controlpoints.retrieval import RetrievalStore
from coprop.errors import WeightsError

os.environ["HF_HUB_OFFLINE"] = "1"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
CHUNK_S = 6  # processor window: longer than the 5 s test clips, small enough for a fast encoder


def byte_symbols() -> list[str]:
    """The 256 symbols of byte-level BPE: printable Latin-1 bytes stand for themselves, the other bytes are
    shifted above U+0100 so every byte has a visible, non-whitespace symbol."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), 256))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


def build_tiny_qwen2_audio(d):
    """Byte-level BPE tokenizer with the chat/audio specials, Whisper features, a 2-layer model — all tied
    together as the recipe requires (audio token id, vocab size, mel bins, source positions)."""
    from transformers import (AutoTokenizer, Qwen2AudioConfig, Qwen2AudioForConditionalGeneration,
                              Qwen2AudioProcessor, WhisperFeatureExtractor)

    d.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(sorted(byte_symbols()))}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "additional_special_tokens": SPECIALS[1:], "model_max_length": 4096}))
    tok = AutoTokenizer.from_pretrained(d)
    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                 chunk_length=CHUNK_S, return_attention_mask=True)
    Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(d)
    cfg = Qwen2AudioConfig(
        audio_config=dict(model_type="qwen2_audio_encoder", d_model=32, encoder_layers=2, encoder_attention_heads=2,
                          encoder_ffn_dim=64, num_mel_bins=128, max_source_positions=fe.nb_max_frames // 2),
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"))
    Qwen2AudioForConditionalGeneration(cfg).eval().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"))


def test_missing_folder_names_it_and_says_how_to_get_weights(tmp_path):
    with pytest.raises(WeightsError) as e:
        make_backend("local", model_path=str(tmp_path / "Qwen2-Audio-7B-Instruct"))
    assert "Qwen2-Audio-7B-Instruct" in str(e.value) and "huggingface-cli download" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="config.json"):
        check_model_folder(tmp_path / "empty")


def test_template_audio_tokens_and_generate(tiny_qwen, tmp_path):
    be = LocalQwenBackend(str(tiny_qwen), device="cpu", max_new_tokens=6, cache=tmp_path)
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000 * 2)).astype(np.float32)
    msgs = [user("Describe the audio.", audio=True), assistant("noise"), user("Name its sound category.")]
    text = be.render(msgs, wav)
    assert text.count("<|audio_bos|><|AUDIO|><|audio_eos|>") == 1
    assert text.endswith("<|im_start|>assistant\n") and "Name its sound category." in text and "noise" in text
    _, proc = be.load()
    inputs = proc(text=[text], audio=[wav], sampling_rate=16000, return_tensors="pt")
    n_audio = int((inputs["input_ids"] == proc.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum())
    assert n_audio == 50  # 25 audio tokens per second
    out = be.chat(msgs, wav)
    assert isinstance(out, str) and be.stats["generated"] == 1
    assert be.chat(msgs, wav) == out and be.stats["cache_hits"] == 1  # second call from the disk cache


@pytest.mark.slow
def test_three_step_rcpg_end_to_end_batched(tiny_qwen, tmp_path):
    """Random weights answer arbitrary bytes: the flow must still run, each clip parsed or its fallback counted."""
    clips = [make_clip("clip-a", [(0, 2.5, "low"), (2.5, 5, "high")]),
             make_clip("clip-b", [(0, 5, "noise")], seed=1),
             make_clip("clip-c", [(0, 1.5, "high"), (1.5, 5, "low")], seed=2)]
    be = LocalQwenBackend(str(tiny_qwen), device="cpu", max_new_tokens=8, batch_size=2, cache=tmp_path)
    fb = CosineSource(fit_threshold=False)
    src = RCPGSource(backend=be, variant="3-step+retrieval", fallback=fb, k=1, batch_size=3)
    store = RetrievalStore()
    store.add("train-1", "dog", [1, 0, 0, 1, 0], embedding=np.ones(64) / 8.0)
    src.store = store
    out = src.predict_many(clips)
    assert all(len(c) == 5 and c[0] == 1 and set(c) <= {0, 1} for c in out)
    assert src.stats["llm"] + src.stats["fallback"] == 3
    assert be.stats["generated"] == 9 and be.stats["batches"] == 6  # 3 turns x 3 clips, in batches of 2
    assert src.stats["parse_error"] == src.parse_stats["rejected"]
    for clip, c in zip(clips, out):
        conv = src.transcripts[clip.name]
        assert [m["role"] for m in conv] == ["user", "assistant"] * 3
        assert conv[0]["audio"] and not any(m["audio"] for m in conv[1:])
        assert "divided into five frames" in conv[4]["text"]
        if src.stats["fallback"] == 3:
            assert c == fb(clip)
