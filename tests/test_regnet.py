"""coprop.models.regnet's timm-free RegNetX trunk: same tensor names and shapes as timm's ``regnetx_002``
feature model, bit-identical outputs in eval mode, BatchNorm folding, and ``coprop infer``'s model loading
(``loading_trained``) building it without importing timm, torchvision or torch._dynamo."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from coprop.infer_fast import fuse_conv_bn
from coprop.models.regnet import ConvBN, RegNetXFeatures, build


def _random_stats(model: torch.nn.Module) -> None:
    """BatchNorm statistics and affine terms away from their init, so that they change the outputs."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


def test_same_names_shapes_and_outputs_as_timm():
    import timm

    torch.manual_seed(0)
    ref = timm.create_model("regnetx_002", features_only=True, pretrained=False).eval()
    _random_stats(ref)
    own = build("regnetx_002").eval()
    ref_state, own_state = ref.state_dict(), own.state_dict()
    assert list(own_state) == list(ref_state)
    assert all(own_state[k].shape == v.shape for k, v in ref_state.items())
    own.load_state_dict(ref_state, strict=True)
    assert own.feature_info.channels() == ref.feature_info.channels()
    assert own.feature_info.reduction() == ref.feature_info.reduction()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        a, b = ref(x), own(x)
    assert len(a) == len(b) == 5
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_folding_the_trunk_keeps_its_outputs():
    torch.manual_seed(1)
    own = build("regnetx_002").eval()
    _random_stats(own)
    x = torch.randn(2, 3, 64, 64)
    blocks = sum(isinstance(m, ConvBN) for m in own.modules())
    with torch.no_grad():
        before = own(x)
        assert fuse_conv_bn(own, torch.zeros(1, 3, 64, 64)) == blocks
        after = own(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in own.modules())
    for a, b in zip(before, after):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_unknown_trunk_is_a_key_error():
    with pytest.raises(KeyError):
        build("regnetx_004")


_LOAD = """
import json, sys, torch
from coprop.models.backbones import loading_trained
from coprop.models.regnet import RegNetXFeatures
from coprop.train import load_run
with loading_trained():
    fast = load_run(sys.argv[1])
heavy = sorted(m for m in ("timm", "torchvision", "torch._dynamo") if m in sys.modules)
bodies = [type(m.backbone.body).__name__ for m in (fast.keyframe, fast.propagator)]
plain = load_run(sys.argv[1])                                   # outside the block: timm's model, as before
x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    same = all(torch.equal(a, b) for m, n in ((fast.keyframe, plain.keyframe), (fast.propagator, plain.propagator))
               for a, b in zip(m.backbone(x), n.backbone(x)))
print(json.dumps({"heavy": heavy, "bodies": bodies, "plain": type(plain.propagator.backbone.body).__name__,
                  "same": same}))
"""


def test_loading_a_trained_run_imports_no_timm(tmp_path):
    """A fresh interpreter, as ``coprop infer`` starts: the run's weights load into the timm-free trunk without
    importing timm (3.3 s of CPU), and its backbone outputs equal those of timm's model with the same weights."""
    from coprop.models.config import get_config
    from coprop.train.checkpoint import save_weights
    from coprop.train.run import WEIGHTS, build_model, record_stage

    cfg = get_config("tiny", image_size=32)
    for stage in ("keyframe", "propagator"):
        torch.manual_seed(2)
        model = build_model(stage, cfg)
        _random_stats(model)
        save_weights(tmp_path / WEIGHTS[stage], model, {"stage": stage, "model": cfg.to_dict()})
        record_stage(tmp_path, cfg, stage, {"note": "untrained, tests/test_regnet.py"})
    out = subprocess.run([sys.executable, "-c", _LOAD, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["heavy"] == []
    assert res["bodies"] == [RegNetXFeatures.__name__] * 2
    assert res["plain"] == "FeatureListNet"
    assert res["same"] is True
