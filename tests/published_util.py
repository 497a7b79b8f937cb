"""Test helpers for the published models: rebuild the golden weights from a manifest and write them as a
checkpoint file in the released layout (shared/fixtures/golden-aot-tpavi/README.md, "The weight scheme").

    case = golden_case("aot_r50_aotl")            # skips when the fixture set is absent
    path = write_released_checkpoint(case, tmp_path)
    model = load_published("r50_aotl", path)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "golden-aot-tpavi"


def golden_case(name: str) -> Path:
    """The fixture folder of one case ('aot_r50_aotl' or 'tpavi/<model>'); skips the test when absent."""
    path = GOLDEN / name
    if not (path / "manifest.json").is_file():
        pytest.skip(f"golden AOT/TPAVI fixtures not found at {path} (a checkout outside the project's CI)")
    return path


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _rule(key: str, shape: list[int], dtype: str) -> str:
    """The first matching row of the README's rule table (1-9)."""
    if dtype.startswith("int"):
        return "int"
    if key.endswith("running_mean"):
        return "running_mean"
    if key.endswith("running_var"):
        return "running_var"
    if key.endswith("relative_emb_v"):
        return "relative_emb_v"
    if key == "patch_wise_id_bank.weight":
        return "id_bank"
    if key.startswith("decoder.adapter_") and key.endswith(".weight"):
        return "adapter"
    if len(shape) <= 1:
        return "norm_scale" if key.endswith("weight") else "bias"
    return "fan_in"


def scheme_tensor(seed: int, index: int, key: str, shape: list[int], dtype: str) -> torch.Tensor:
    """Row ``index`` of a manifest, built with the README's weight scheme."""
    rule = _rule(key, shape, dtype)
    if rule == "int":
        return torch.zeros(shape, dtype=getattr(torch, dtype))
    g = torch.Generator().manual_seed(seed + index)
    numel = int(np.prod(shape)) if shape else 1
    fan_in = numel // shape[0] if shape else 1
    if rule == "running_var":
        return torch.rand(shape, generator=g) * 0.1 + 1.0
    x = torch.randn(shape, generator=g)
    if rule == "running_mean":
        return x * 0.1
    if rule == "relative_emb_v":
        return x * 0.5
    if rule == "id_bank":
        return x * 0.15
    if rule == "adapter":
        return x * torch.tensor(fan_in ** -0.5, dtype=torch.float32) * 0.1  # two float32 products, f first
    if rule == "norm_scale":
        return x * 0.1 + 1.0
    if rule == "bias":
        return x * 0.05
    return x * fan_in ** -0.5


def rebuild_weights(case: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """The state dict of ``case/manifest.json`` in the released key order.

    ``verify`` checks every tensor's first values exactly and its float64 sum / sum of squares to 1e-9
    against the manifest, so a change in torch's random stream shows here and not as a model mismatch.
    """
    manifest = json.loads((case / "manifest.json").read_text())
    cols = {c: i for i, c in enumerate(manifest["columns"])}
    seed = int(manifest["weight_scheme_seed"])
    state = {}
    for row in manifest["tensors"]:
        index, key, shape, dtype = (row[cols[c]] for c in ("index", "key", "shape", "dtype"))
        t = scheme_tensor(seed, index, key, list(shape), dtype)
        if verify:
            flat = t.reshape(-1).double()
            first = row[cols["first"]]
            assert flat[:len(first)].tolist() == pytest.approx(first, rel=0, abs=0), f"{key}: first values differ"
            assert float(flat.sum()) == pytest.approx(row[cols["sum"]], rel=1e-9, abs=1e-9), f"{key}: sum differs"
            assert float((flat * flat).sum()) == pytest.approx(row[cols["sumsq"]], rel=1e-9), f"{key}: sumsq"
        state[key] = t
    assert len(state) == manifest.get("num_tensors", len(state))
    return state


def write_released_checkpoint(case: Path, out_dir: Path, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``case``'s weights (or ``state``) as the released file would be: AOT under 'state_dict' next to an
    'optimizer' entry, as aot-benchmark's saver writes; TPAVI as a raw state dict."""
    state = rebuild_weights(case) if state is None else state
    out_dir.mkdir(parents=True, exist_ok=True)
    if case.name == "aot_r50_aotl":
        path = out_dir / "R50_AOTL_PRE_YTB_DAV.pth"
        torch.save({"state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    else:
        path = out_dir / f"{case.name}.pth"
        torch.save(state, path)
    return path
