"""Audio encoders: torchvggish checkpoints load strictly, frozen VGGish, several tokens per frame."""
from __future__ import annotations

import pytest
import torch

from coprop.errors import ConfigError, WeightsError
from coprop.models.audio_encoder import build_audio_encoder
from coprop.models.config import get_config
from models_util import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

# torchvggish v0.1 vggish-10086976.pth: exactly these keys (reference/avsbench.md §3, models-offline.md §4.1)
TORCHVGGISH_SHAPES = {
    "features.0": (64, 1, 3, 3), "features.3": (128, 64, 3, 3), "features.6": (256, 128, 3, 3),
    "features.8": (256, 256, 3, 3), "features.11": (512, 256, 3, 3), "features.13": (512, 512, 3, 3),
    "embeddings.0": (4096, 12288), "embeddings.2": (4096, 4096), "embeddings.4": (128, 4096),
}


def _fake_torchvggish(path, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in TORCHVGGISH_SHAPES.items():
        fan_in = torch.Size(shape[1:]).numel()
        sd[f"{name}.weight"] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        sd[f"{name}.bias"] = torch.randn(shape[0], generator=g) * 0.01
    torch.save(sd, path)
    return sd


@pytest.fixture(scope="module")
def vggish_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "vggish-10086976.pth"
    return path, _fake_torchvggish(path)


def test_torchvggish_checkpoint_loads_strictly_and_is_frozen(vggish_file):
    path, sd = vggish_file
    cfg = get_config("paper", audio_weights=str(path))
    enc = build_audio_encoder(cfg)
    own = enc.vggish.state_dict()
    assert set(own) == set(sd)
    assert torch.equal(own["features.13.weight"], sd["features.13.weight"])
    assert torch.equal(own["embeddings.4.bias"], sd["embeddings.4.bias"])
    enc.train()
    assert not enc.vggish.training and all(not p.requires_grad for p in enc.vggish.parameters())
    logmel = torch.randn(3, 1, 96, 64)
    tokens, pooled = enc(logmel)
    assert tokens.shape == (3, 24, cfg.dim) and pooled.shape == (3, cfg.dim)
    tokens.sum().backward()  # the projections train, VGGish does not
    assert enc.token_proj.weight.grad is not None and enc.vggish.features[0].weight.grad is None
    _, emb = enc.vggish(logmel)
    assert emb.shape == (3, 128) and (emb >= 0).all()  # ReLU after the last FC, as torchvggish


def test_vggish_flatten_is_channels_last(vggish_file):
    """The first FC sees the conv map in TF (NHWC) order: check against a hand-computed flatten."""
    path, _ = vggish_file
    enc = build_audio_encoder(get_config("paper", audio_weights=str(path)))
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        fmap, emb = enc.vggish(x)
        assert fmap.shape == (2, 512, 6, 4)
        flat = torch.stack([fmap[b].permute(1, 2, 0).reshape(-1) for b in range(2)])
        ref = enc.vggish.embeddings(flat)
    torch.testing.assert_close(emb, ref)


def test_missing_vggish_file_names_it(tmp_path, monkeypatch):
    missing = tmp_path / "vggish-10086976.pth"
    with pytest.raises(WeightsError) as e:
        build_audio_encoder(get_config("paper", audio_weights=str(missing)))
    msg = str(e.value)
    assert str(missing) in msg and "features.0.weight" in msg and "harritaylor/torchvggish" in msg
    monkeypatch.setenv("COPROP_PRETRAINED", str(tmp_path))
    with pytest.raises(WeightsError, match="vggish-10086976.pth"):
        build_audio_encoder(get_config("paper"))
    assert build_audio_encoder(get_config("paper"), allow_random=True)(torch.randn(1, 1, 96, 64))[0].shape[1] == 24


def test_wrong_vggish_file_lists_keys(tmp_path):
    path = tmp_path / "vggish.pth"
    sd = {f"features_network.{k[len('features.'):]}": torch.zeros(1) for k in ("features.0.weight",)}
    torch.save(sd, path)
    with pytest.raises(WeightsError) as e:
        build_audio_encoder(get_config("paper", audio_weights=str(path)))
    assert "missing keys: embeddings.0.bias" in str(e.value) and "features_network.0.weight" in str(e.value)


def test_tiny_audio_encoder_shapes_and_silence():
    cfg = get_config("tiny")
    enc = build_audio_encoder(cfg)
    tokens, pooled = enc(torch.randn(4, 1, 96, 64))
    assert tokens.shape == (4, cfg.audio_tokens, cfg.dim) and pooled.shape == (4, cfg.dim)
    silent = torch.full((1, 1, 96, 64), -4.605)
    loud = silent + 3.0
    assert not torch.allclose(enc(silent)[1], enc(loud)[1])  # loudness survives (no per-example norm)
    with pytest.raises(ValueError, match=r"\[B,1,96,64\]"):
        enc(torch.randn(2, 1, 64, 96))


def test_vggish_token_count_is_checked():
    with pytest.raises(ConfigError, match="audio_tokens=24"):
        build_audio_encoder(get_config("paper", audio_tokens=8), allow_random=True)
