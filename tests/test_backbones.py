"""Backbones: 4 levels at strides 4..32, original-release checkpoints load strictly, bad files fail clearly."""
from __future__ import annotations

import re

import pytest
import timm
import torch

from coprop.errors import WeightsError
from coprop.models.backbones import build_backbone
from coprop.models.config import get_config
from models_util import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def _to_pvt_release_key(k: str) -> str:
    """timm full-model PVT-v2 key -> the whai362/PVT release name (test-side inverse, written independently)."""
    k = re.sub(r"^patch_embed\.", "patch_embed1.", k)
    k = re.sub(r"^stages\.(\d)\.downsample\.", lambda m: f"patch_embed{int(m[1]) + 1}.", k)
    k = re.sub(r"^stages\.(\d)\.blocks\.(\d+)\.", lambda m: f"block{int(m[1]) + 1}.{m[2]}.", k)
    k = re.sub(r"^stages\.(\d)\.norm\.", lambda m: f"norm{int(m[1]) + 1}.", k)
    return k.replace("mlp.dwconv.", "mlp.dwconv.dwconv.")


def _pvt_release_checkpoint(name: str, path):
    full = timm.create_model(name, pretrained=False)
    orig = {_to_pvt_release_key(k): v.clone() for k, v in full.state_dict().items()}
    # our fake must be what timm itself recognises as the original format
    assert "patch_embed1.proj.weight" in orig and "head.weight" in orig
    assert any(".mlp.dwconv.dwconv." in k for k in orig)
    refiltered = timm.models.pvt_v2.checkpoint_filter_fn(orig, full)
    assert set(refiltered) == set(full.state_dict())
    torch.save(orig, path)
    return orig


def test_tiny_backbone_levels():
    bb = build_backbone(get_config("tiny"))
    feats = bb(torch.randn(2, 3, 128, 128))
    assert len(feats) == 4 and bb.strides == [4, 8, 16, 32]
    for f, c, s in zip(feats, bb.channels, bb.strides):
        assert f.shape == (2, c, 128 // s, 128 // s)


def test_pvt_release_checkpoint_loads_strictly(tmp_path):
    path = tmp_path / "pvt_v2_b0.pth"
    orig = _pvt_release_checkpoint("pvt_v2_b0", path)
    bb = build_backbone(get_config("tiny", backbone="pvt_v2_b0", backbone_weights=str(path)))
    sd = bb.body.state_dict()
    assert torch.equal(sd["patch_embed.proj.weight"], orig["patch_embed1.proj.weight"])
    assert torch.equal(sd["stages_2.downsample.norm.bias"], orig["patch_embed3.norm.bias"])
    assert torch.equal(sd["stages_1.blocks.1.mlp.dwconv.weight"], orig["block2.1.mlp.dwconv.dwconv.weight"])
    assert torch.equal(sd["stages_3.norm.weight"], orig["norm4.weight"])
    assert [f.shape[1] for f in bb(torch.randn(1, 3, 64, 64))] == [32, 64, 160, 256]


def test_torchvision_resnet_checkpoint_loads_strictly(tmp_path):
    import torchvision

    tv = torchvision.models.resnet50()
    path = tmp_path / "resnet50-19c8e357.pth"
    torch.save(tv.state_dict(), path)
    cfg = get_config("paper", backbone="resnet50", backbone_weights=str(path), backbone_drop_path=0.0)
    bb = build_backbone(cfg)
    assert bb.channels == [256, 512, 1024, 2048]
    assert torch.equal(bb.body.state_dict()["layer4.2.conv3.weight"], tv.state_dict()["layer4.2.conv3.weight"])
    assert torch.equal(bb.body.state_dict()["bn1.running_var"], tv.state_dict()["bn1.running_var"])


def test_missing_file_names_it_keys_and_source(tmp_path):
    missing = tmp_path / "nowhere" / "pvt_v2_b5.pth"
    with pytest.raises(WeightsError) as e:
        build_backbone(get_config("paper", backbone_weights=str(missing)))
    msg = str(e.value)
    assert str(missing) in msg and "patch_embed1.proj.weight" in msg and "whai362" in msg
    assert "1386rcFHJ1QEQQMF6bV1rXJTzy8v26RTV" in msg


def test_paper_config_without_file_needs_explicit_random(tmp_path, monkeypatch):
    monkeypatch.setenv("COPROP_PRETRAINED", str(tmp_path))  # an empty folder: no default file to find
    with pytest.raises(WeightsError, match="resnet50-19c8e357.pth"):
        build_backbone(get_config("paper", backbone="resnet50"))
    bb = build_backbone(get_config("paper", backbone="resnet50"), allow_random=True)
    assert bb.channels == [256, 512, 1024, 2048]


def test_default_file_is_found_in_pretrained_dir(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("COPROP_PRETRAINED", str(tmp_path))
    tv = torchvision.models.resnet50()
    torch.save(tv.state_dict(), tmp_path / "resnet50-19c8e357.pth")
    bb = build_backbone(get_config("paper", backbone="resnet50"))
    assert torch.equal(bb.body.state_dict()["conv1.weight"], tv.state_dict()["conv1.weight"])


def test_mismatched_checkpoint_lists_keys(tmp_path):
    path = tmp_path / "pvt_v2_b0.pth"
    orig = _pvt_release_checkpoint("pvt_v2_b0", path)
    del orig["block1.0.attn.q.weight"]
    orig["block9.0.extra.weight"] = torch.zeros(1)
    torch.save(orig, path)
    with pytest.raises(WeightsError) as e:
        build_backbone(get_config("tiny", backbone="pvt_v2_b0", backbone_weights=str(path)))
    msg = str(e.value)
    assert str(path) in msg and "missing keys: stages_0.blocks.0.attn.q.weight" in msg
    assert "unexpected keys" in msg and "extra.weight" in msg
    # a b0 file for a b1 model: every width differs
    _pvt_release_checkpoint("pvt_v2_b0", path)
    with pytest.raises(WeightsError, match="shape mismatches"):
        build_backbone(get_config("tiny", backbone="pvt_v2_b1", backbone_weights=str(path)))


def test_unreadable_file(tmp_path):
    path = tmp_path / "pvt_v2_b5.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weight file"):
        build_backbone(get_config("tiny", backbone="pvt_v2_b0", backbone_weights=str(path)))


def test_other_timm_checkpoint_drops_its_classifier(tmp_path):
    full = timm.create_model("regnetx_002", pretrained=False)
    path = tmp_path / "regnetx_002.pth"
    torch.save({"state_dict": full.state_dict()}, path)  # wrapped, as training scripts often save
    bb = build_backbone(get_config("tiny", backbone="regnetx_002", backbone_weights=str(path)))
    assert torch.equal(bb.body.state_dict()["s4.b1.conv1.conv.weight"], full.state_dict()["s4.b1.conv1.conv.weight"])
