"""TPAVI through the published-weights loader against the golden outputs of the original AVSBench code
(shared/fixtures/golden-aot-tpavi/tpavi; protocol in its README), its loader errors, and TPAVI on log-mel input.

Each golden test is one forward pass of a full-size model at 224 px (20-70 s on 2 shared cores), hence slow.
The AVSS cases run their first TPAVI window (frames 0-4, flag 1): TPAVI processes a 10-frame clip as two
independent 5-frame windows, which ``test_model_windows_and_temporal_flag`` checks on its own.
"""
from __future__ import annotations

import time

import pytest
import torch

from coprop.errors import ConfigError, WeightsError
from coprop.models.published import load_published
from coprop.models.published.tpavi import build_tpavi
from coprop.models.published.tpavi_blocks import TPAVIBlock
from published_util import golden_case, load_npz, rebuild_weights, write_released_checkpoint

ATOL = RTOL = 1e-4
PIXELS = 1e-4              # README: <= 0.01 % of mask / label pixels may flip
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def golden_inputs(case):
    """README: ToTensor + Normalize in float32 -> frames [5,3,224,224]; the audio rows [10,128]."""
    inputs = load_npz(case.parent / "inputs.npz")
    frames = torch.from_numpy(inputs["frames"]).permute(0, 3, 1, 2).float() / 255.0
    return (frames - MEAN) / STD, torch.from_numpy(inputs["audio"])


def loaded(name, tmp_path):
    case = golden_case(f"tpavi/{name}")
    state = rebuild_weights(case)
    path = write_released_checkpoint(case, tmp_path, state)
    t0 = time.perf_counter()
    model = load_published(name, path)
    return case, state, model, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.parametrize("name,rows", [("tpavi_r50_s4", slice(0, 5)), ("tpavi_pvtb5_ms3", slice(5, 10))])
def test_binary_golden(name, rows, tmp_path):
    case, state, model, _ = loaded(name, tmp_path)
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    # every key of the file is used except the ResNet branch the original never runs
    assert set(model.state_dict()) == {k for k in state if not k.startswith(("resnet.layer3_2.", "resnet.layer4_2."))}
    frames, audio = golden_inputs(case)
    with torch.inference_mode():
        logits = model(frames, audio[rows])
    out = load_npz(case / "outputs.npz")
    assert logits.shape == (5, 1, 224, 224)
    torch.testing.assert_close(logits[0], torch.from_numpy(out["logits_frame0"]), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(logits[:, :, ::2, ::2], torch.from_numpy(out["logits_s2"]), atol=ATOL, rtol=RTOL)
    flipped = ((logits[:, 0] > 0).numpy() != out["mask"]).mean()
    assert flipped <= PIXELS


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tpavi_r50_avss", "tpavi_pvtb5_avss"])
def test_avss_golden_first_window(name, tmp_path):
    case, _, model, _ = loaded(name, tmp_path)
    frames, audio = golden_inputs(case)  # AVSS clip = frames 0,1,2,3,4,4,3,2,1,0 with audio rows 0-9
    flag = torch.ones(5)
    with torch.inference_mode():
        logits = model(frames, audio[:5] * flag[:, None], flag)
    out = load_npz(case / "outputs.npz")
    assert logits.shape == (5, 71, 224, 224)
    torch.testing.assert_close(logits[:, :, 14::28, 14::28], torch.from_numpy(out["logits_grid"][:5]),
                               atol=ATOL, rtol=RTOL)
    flipped = (logits.argmax(1).numpy() != out["labels"][:5]).mean()
    assert flipped <= PIXELS


def test_tpavi_block_is_the_dense_dot_product_per_window():
    """The factored audio term equals the spec's dense form y = (theta^T phi(A) / N) g, window by window."""
    torch.manual_seed(0)
    block = TPAVIBlock().eval()
    torch.nn.init.normal_(block.W_z[1].weight)  # a non-trivial BatchNorm so the audio term shows in the output
    x, audio = torch.randn(2, 256, 5, 6, 7), torch.rand(2, 5, 128)
    with torch.no_grad():
        out, aligned = block(x, audio)
        B, C, T, H, W = x.shape
        a_map = aligned.transpose(1, 2)[..., None, None].expand(-1, -1, -1, H, W)
        theta = block.theta(x).flatten(2).transpose(1, 2)
        f = theta @ block.phi(a_map).flatten(2)                     # [B, THW, THW]
        y = (f / f.shape[-1]) @ block.g(x).flatten(2).transpose(1, 2)
        z = block.W_z(y.transpose(1, 2).reshape(B, -1, T, H, W)) + x
        dense = block.norm_layer(z.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        torch.testing.assert_close(out, dense, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1:], block(x[1:], audio[1:])[0])     # windows are independent
        audio2 = audio.clone()
        audio2[1, 2] = torch.rand(128)
        moved = block(x, audio2)[0]
    assert torch.equal(moved[0], out[0]) and (moved[1] - out[1]).abs().max() > 1e-3


def test_model_windows_and_temporal_flag():
    """A 10-frame AVSS clip is two 5-frame windows; a zero temporal flag gives a frame zero logits."""
    torch.manual_seed(0)
    model = build_tpavi("tpavi_r50_avss").eval()
    frames, audio = torch.randn(10, 3, 32, 32), torch.rand(10, 128)
    flag = torch.ones(10)
    flag[8:] = 0
    with torch.inference_mode():
        whole = model(frames, audio * flag[:, None], flag)
        second = model(frames[5:], audio[5:] * flag[5:, None], flag[5:])
    assert whole.shape == (10, 71, 32, 32)
    torch.testing.assert_close(whole[5:], second, atol=1e-5, rtol=1e-5)
    assert whole[8:].abs().max() == 0 and whole[:8].abs().max() > 0
    with pytest.raises(ValueError, match="multiple of 5"):
        model(frames[:7], audio[:7])


def test_loader_errors(tmp_path):
    """A ResNet file with AVSBench's unused branch loads; as another model it names missing keys and wrong
    shapes; unknown keys and a missing file are errors too."""
    avss = build_tpavi("tpavi_r50_avss").state_dict()
    branch = {k.replace("layer3_1", "layer3_2"): v for k, v in avss.items() if ".layer3_1." in k}
    path = tmp_path / "V2_resnet_miou_best.pth"
    torch.save({**avss, **branch}, path)
    model = load_published("tpavi_r50_avss", path)
    assert set(model.state_dict()) == set(avss) and not model.training
    assert torch.equal(model.state_dict()["conv1.conv2d_list.3.weight"], avss["conv1.conv2d_list.3.weight"])
    with pytest.raises(WeightsError) as e:
        load_published("tpavi_r50_s4", path)
    msg = str(e.value)
    assert str(path) in msg and "4 missing key(s)" in msg and "tpavi_b1.align_channel.bias" in msg
    assert "output_conv.4.weight (checkpoint (71, 32, 1, 1), model (1, 32, 1, 1))" in msg
    assert "layer3_2" not in msg
    with pytest.raises(WeightsError, match=r"1 unknown key\(s\): resnet\.fc\.weight"):
        load_published("tpavi_r50_avss", {**avss, "resnet.fc.weight": torch.zeros(10, 2048)})
    with pytest.raises(WeightsError, match="S4_resnet_best.pth.*never released.*issues #9 and #25"):
        load_published("tpavi_r50_s4", tmp_path / "S4_resnet_best.pth")
    with pytest.raises(ConfigError, match="unknown published model"):
        load_published("tpavi_r101_s4", path)
