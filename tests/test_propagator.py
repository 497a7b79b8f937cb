"""Audio-Insert Propagator: builds, shapes, attention pieces, guidance, and overfitting one clip."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from coprop.errors import ConfigError, DataError
from coprop.models.config import get_config
from coprop.models.losses import segmentation_loss
from coprop.models.lstt import LSTTBlock, merge_heads, split_heads, window_bias
from coprop.models.propagator import AudioInsertPropagator

S = 64




def _tiny(**kw) -> AudioInsertPropagator:
    torch.manual_seed(0)
    return AudioInsertPropagator(get_config("tiny", image_size=S, **kw))


def _mask(B: int = 1, size: int = S) -> torch.Tensor:
    m = torch.zeros(B, size, size, dtype=torch.long)
    m[:, 8:30, 8:24] = 1
    m[:, 36:56, 30:60] = 2
    return m


def moving_disc_clip(T: int = 5, size: int = S, seed: int = 0):
    """A red disc moving right on a textured background with a blue distractor disc moving left.

    Returns normalised-ish frames [T,3,S,S] (float), the red disc's masks [T,S,S] (long) and log-mel noise.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    background = torch.stack([0.3 + 0.2 * torch.sin(xx / 5), 0.4 + 0.2 * torch.cos(yy / 7),
                              0.35 + 0.1 * torch.sin((xx + yy) / 9)])
    background = background + 0.05 * torch.randn(3, size, size, generator=g)
    frames, masks = [], []
    r = size * 0.16
    for t in range(T):
        red = ((yy - size * 0.4) ** 2 + (xx - size * (0.25 + 0.08 * t)) ** 2) <= r ** 2
        blue = ((yy - size * 0.7) ** 2 + (xx - size * (0.8 - 0.07 * t)) ** 2) <= (r * 0.9) ** 2
        img = background.clone()
        img[:, blue] = torch.tensor([0.1, 0.2, 0.9])[:, None]
        img[:, red] = torch.tensor([0.9, 0.15, 0.1])[:, None]
        frames.append((img - 0.45) / 0.25)
        masks.append(red.long())
    audio = torch.randn(T, 1, 96, 64, generator=g) - 2.0
    return torch.stack(frames), torch.stack(masks), audio


@pytest.mark.parametrize("levels,inserted", [(0, 0), (1, 1), (4, 4)])
def test_builds_for_each_audio_insert_setting(levels, inserted):
    model = _tiny(audio_insert_levels=levels)
    assert len(model.inserts) == inserted
    assert (model.guidance is None) == (levels == 0)


def test_unsupported_settings_are_config_errors():
    with pytest.raises(ConfigError, match="audio_insert_levels"):
        AudioInsertPropagator(get_config("tiny", image_size=S, audio_insert_levels=2))
    with pytest.raises(ConfigError, match="multiple of 32"):
        AudioInsertPropagator(get_config("tiny", image_size=80))


def test_step_and_forward_train_shapes_for_several_objects():
    model = _tiny(audio_insert_levels=4)
    B, T = 2, 3
    frames, audio = torch.randn(B, T, 3, S, S), torch.randn(B, T, 1, 96, 64)
    mask = _mask(B)
    model.eval()
    with torch.inference_mode():
        state = model.start(frames[:, 0], audio[:, 0], mask, num_objects=2)
        for t in range(1, T):
            logits, state = model.step(frames[:, t], audio[:, t], state)
            assert logits.shape == (B, 3, S, S) and torch.isfinite(logits).all()
    assert state.frame_index == T - 1
    model.train()
    out = model.forward_train(frames, audio, mask, num_objects=2)
    assert out.shape == (B, T - 1, 3, S, S)
    out.logsumexp(2).mean().backward()
    assert model.backbone.body is not None and any(p.grad is not None for p in model.backbone.parameters())


def test_memory_is_differentiable_in_training():
    """A loss on the last frame only reaches the identity bank through memory values of earlier frames."""
    model = _tiny(long_term_gap_train=1)
    model.train()
    frames, masks, audio = moving_disc_clip(T=3)
    out = model.forward_train(frames[None], audio[None], masks[:1], num_objects=1)
    F.cross_entropy(out[:, -1], masks[None, -1]).backward()
    assert model.identity.weight.grad is not None and model.identity.weight.grad.abs().sum() > 0


def test_audio_changes_the_output_only_when_inserted():
    frames, audio = torch.randn(2, 3, S, S), torch.randn(2, 1, 96, 64)
    mask = _mask(1)
    for levels in (0, 1, 4):
        model = _tiny(audio_insert_levels=levels).eval()
        with torch.inference_mode():
            outs = []
            for a in (audio[:1], audio[1:]):
                state = model.start(frames[:1], a, mask, num_objects=2)
                outs.append(model.step(frames[1:], a, state)[0])
        differs = not torch.allclose(outs[0], outs[1])
        assert differs == (levels > 0), levels


def test_text_guidance_is_a_configuration():
    model = _tiny(guidance="text", num_text_labels=5).eval()
    assert not hasattr(model.guidance, "audio")
    frames = torch.randn(2, 3, S, S)
    mask = _mask(1)
    with torch.inference_mode():
        outs = []
        for label in (1, 3):
            state = model.start(frames[:1], None, mask, num_objects=2, text_labels=torch.tensor([label]))
            outs.append(model.step(frames[1:], None, state)[0])
    assert outs[0].shape == (1, 3, S, S) and not torch.allclose(outs[0], outs[1])
    model.train()
    out = model.forward_train(frames[None], None, mask, num_objects=2, text_labels=torch.tensor([2]))
    assert out.shape == (1, 1, 3, S, S)
    with pytest.raises(ConfigError):
        AudioInsertPropagator(get_config("tiny", image_size=S, guidance="text", num_text_labels=0))


def test_short_term_attention_is_local_window_attention():
    """The masked SDPA equals a direct computation over each query's window of the previous frame."""
    torch.manual_seed(0)
    h, w, heads, d, window = 5, 6, 2, 4, 3
    table = torch.randn(heads, window * window)
    q, k, v = (torch.randn(1, heads, h * w, d) for _ in range(3))
    got = F.scaled_dot_product_attention(q, k, v, attn_mask=window_bias(table, h, w, window, q.dtype))
    want = torch.empty_like(got)
    r = window // 2
    for i in range(h * w):
        yi, xi = divmod(i, w)
        keys, bias = [], []
        for j in range(h * w):
            yj, xj = divmod(j, w)
            if abs(yj - yi) <= r and abs(xj - xi) <= r:
                keys.append(j)
                bias.append(table[:, (yj - yi + r) * window + (xj - xi + r)])
        logits = (q[0, :, i:i + 1] @ k[0][:, keys].transpose(-1, -2))[:, 0] / d ** 0.5 + torch.stack(bias, 1)
        want[0, :, i] = (logits.softmax(-1)[:, None, :] @ v[0][:, keys])[:, 0]
    assert torch.allclose(got, want, atol=1e-5)
    x = torch.randn(1, 10, 8)
    assert torch.equal(merge_heads(split_heads(x, 2)), x)
    with pytest.raises(ValueError):
        LSTTBlock(8, 2, window=4)


def test_bad_inputs_are_clear_errors():
    model = _tiny().eval()
    frame, audio = torch.randn(1, 3, S, S), torch.randn(1, 1, 96, 64)
    with pytest.raises(ConfigError, match="max_objects"):
        model.start(frame, audio, _mask(1), num_objects=11)
    with pytest.raises(DataError, match="mask ids"):
        model.start(frame, audio, _mask(1), num_objects=1)
    with pytest.raises(DataError, match="divisible by 32"):
        model.start(torch.randn(1, 3, 48, 48), audio, torch.zeros(1, 48, 48, dtype=torch.long), num_objects=1)
    state = model.start(frame, audio, _mask(1), num_objects=2)
    with pytest.raises(DataError, match="size"):
        model.step(torch.randn(1, 3, 96, 96), audio, state)


def _jaccard(pred: torch.Tensor, gt: torch.Tensor) -> float:
    inter = (pred & gt.bool()).sum().item()
    union = (pred | gt.bool()).sum().item()
    return inter / max(union, 1)


@pytest.mark.slow
def test_overfits_one_clip_from_its_keyframe_mask():
    """Given the GT keyframe mask, the tiny propagator learns to track the disc (J > 0.9 on later frames)."""
    torch.manual_seed(0)
    model = AudioInsertPropagator(get_config("tiny", image_size=S, long_term_gap_train=1))
    frames, masks, audio = moving_disc_clip(T=5)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for it in range(200):
        out = model.forward_train(frames[None], audio[None], masks[:1], num_objects=1)
        loss = segmentation_loss(out[0], masks[1:], num_classes=2, dice=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 10 == 9:
            model.eval()
            with torch.inference_mode():
                state = model.start(frames[:1], audio[:1], masks[:1], num_objects=1)
                js = [_jaccard(model.step(frames[t:t + 1], audio[t:t + 1], state)[0].argmax(1)[0] == 1, masks[t])
                      for t in range(1, 5)]
            model.train()
            if min(js) > 0.9:
                break
    assert min(js) > 0.9, (it, js, float(loss))
