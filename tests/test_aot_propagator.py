"""The ``paper`` config's propagator: R50-AOTL as released + zero-initialised AudioInsert layers (paper 4.2).

The fresh propagator must give AOT's outputs exactly (golden case 2 of shared/fixtures/golden-aot-tpavi), the
AOT checkpoint must be its only source of weights besides the AudioInsert layers, and training must start
from it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coprop.errors import ConfigError, WeightsError
from coprop.models.aot_propagator import AOTAudioInsertPropagator, new_parameter_names
from coprop.models.config import get_config
from coprop.models.memory import MemoryPolicy
from coprop.models.propagator import AudioInsertPropagator
from coprop.models.propagators import build_propagator
from coprop.models.published.aot_session import normalise_frame
from published_util import golden_case, load_npz, rebuild_weights, write_released_checkpoint


@pytest.fixture(scope="module")
def aot_file(tmp_path_factory):
    case = golden_case("aot_r50_aotl")
    return case, write_released_checkpoint(case, tmp_path_factory.mktemp("aot"), rebuild_weights(case, verify=False))


@pytest.mark.slow
def test_fresh_paper_propagator_is_aot(aot_file):
    """Golden case 2 (2 objects, gap 5), with audio, free-running: the fresh AudioInsert propagator's logits equal
    the original AOT's stored logits upsampled the same way, and its labels the stored labels."""
    case, path = aot_file
    inputs, outputs = load_npz(case / "inputs.npz"), load_npz(case / "outputs.npz")
    gap = json.loads((case / "meta.json").read_text())["case2"]["long_term_mem_gap"]
    cfg = get_config("paper", propagator_weights=str(path))
    prop = build_propagator(cfg, allow_random=True).eval()    # random VGGish: its tokens must not matter
    assert isinstance(prop, AOTAudioInsertPropagator) and prop.loaded_from == str(path)
    frames, mask = inputs["frames"], inputs["mask_case2"].astype(np.int64)
    size = frames.shape[1:3]
    audio = torch.randn(len(frames), 1, 96, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        state = prop.start(normalise_frame(frames[0]), audio[:1], torch.as_tensor(mask)[None], 2,
                           policy=MemoryPolicy(gap=gap, capacity=cfg.memory_capacity))
        for t in range(1, len(frames)):
            ours, state = prop.step(normalise_frame(frames[t]), audio[t:t + 1], state)
            gold = F.interpolate(torch.as_tensor(outputs["case2_logits_q"][t - 1])[None], size=size,
                                 mode="bilinear", align_corners=True)
            assert ours.shape == (1, 3, *size)
            torch.testing.assert_close(ours, gold, atol=1e-4, rtol=1e-4)
            flipped = (ours[0].argmax(0).numpy() != outputs["case2_labels"][t - 1]).mean()
            assert flipped <= 5e-4, (t, flipped)
    assert state.store.frames == [0, 5]


def test_paper_propagator_parameters(aot_file):
    """Every AOT tensor loads into ``aot.*``; the only other parameters are the inserts and their audio tokens;
    with audio_insert_levels=0 the propagator is exactly the checkpoint."""
    _, path = aot_file
    cfg = get_config("paper", propagator_weights=str(path), audio_encoder="tiny")
    plain = build_propagator(cfg.replace(audio_insert_levels=0))
    assert sorted(plain.state_dict()) == sorted("aot." + k for k in torch.load(path)["state_dict"])
    assert new_parameter_names(plain) == []
    prop = build_propagator(cfg)
    new = new_parameter_names(prop)
    assert {n.split(".")[0] for n in new} == {"inserts", "guidance"}
    assert {n.split(".")[1] for n in new if n.startswith("inserts.")} == {"0", "1", "2", "3"}
    assert all(torch.count_nonzero(p) == 0 for n, p in prop.named_parameters() if n.endswith("attn.out.weight"))
    assert not any(p.requires_grad for p in prop.aot.encoder.layer1.parameters())


def test_paper_propagator_needs_the_aot_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COPROP_PRETRAINED", str(tmp_path))
    with pytest.raises(WeightsError, match=r"R50_AOTL_PRE_YTB_DAV\.pth.*1qJDYn3Ibpquu4ffYoQmVjg1YCbr2JQep"):
        build_propagator(get_config("paper"))
    with pytest.raises(WeightsError, match="missing.pth"):
        build_propagator(get_config("paper", propagator_weights=str(tmp_path / "missing.pth")))


def test_tiny_keeps_its_own_propagator():
    prop = build_propagator(get_config("tiny", image_size=64))
    assert type(prop) is AudioInsertPropagator and not hasattr(prop, "aot")


def test_paper_propagator_trains_from_aot(aot_file):
    """forward_train at 65 px: gradients reach the zero-initialised inserts and the LSTT, not the frozen stem."""
    _, path = aot_file
    torch.manual_seed(0)
    prop = build_propagator(get_config("paper", propagator_weights=str(path), audio_encoder="tiny")).train()
    frames = torch.randn(1, 3, 3, 65, 65)
    mask = torch.zeros(1, 65, 65, dtype=torch.long)
    mask[:, 20:45, 10:40] = 1
    logits = prop.forward_train(frames, torch.randn(1, 3, 1, 96, 64), mask, 1, id_shuffle=True)
    assert logits.shape == (1, 2, 2, 65, 65)
    F.cross_entropy(logits.flatten(0, 1), mask.expand(2, -1, -1)).backward()
    assert all(prop.inserts[l].attn.out.weight.grad.abs().sum() > 0 for l in "0123")
    assert prop.aot.LSTT.layers[0].short_term_attn.relative_emb_v.grad.abs().sum() > 0
    assert prop.aot.encoder.conv1.weight.grad is None
    # once trained away from zero, the inserts make the output depend on the audio
    with torch.no_grad():
        for insert in prop.inserts.values():
            insert.attn.out.weight.normal_(std=0.1)
        prop.eval()
        a, b = (prop.forward_train(frames, torch.randn(1, 3, 1, 96, 64), mask, 1) for _ in range(2))
    assert (a - b).abs().max() > 1e-3


@pytest.mark.slow
def test_paper_propagator_stage_starts_from_aot(aot_file, synth_root, tmp_path):
    """coprop.train's propagator stage with the paper config (64 px, tiny audio encoder, 2 steps): it starts from
    the AOT file, keeps the frozen stem at the file's values, and the run folder reloads into the same model."""
    from coprop.data import open_dataset
    from coprop.train import TrainParams, load_run, prepare
    from coprop.train.stages import train_propagator

    case, path = aot_file
    cfg = get_config("paper", image_size=64, audio_encoder="tiny", propagator_weights=str(path))
    train = prepare(open_dataset(synth_root, "ms3", "train"), 64)
    p = TrainParams(epochs=1, batch_size=1, lr=1e-4, max_steps_per_epoch=2, num_threads=1, device="cpu")
    # as the suites call it: a keyframe encoder is offered, the AOT propagator keeps AOT's own
    res = train_propagator(cfg, train, None, tmp_path / "run", params=p, init_backbone=tmp_path / "keyframe.pth")
    assert res.model.loaded_from == str(path)
    stem = torch.load(path)["state_dict"]["encoder.conv1.weight"]
    run = load_run(tmp_path / "run")
    assert isinstance(run.propagator, AOTAudioInsertPropagator) and run.propagator.loaded_from is None
    assert torch.equal(run.propagator.aot.encoder.conv1.weight, stem)
    trained = res.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in run.propagator.state_dict().items())


def test_published_aot_as_a_run(aot_file, tmp_path):
    """Tables 2a/5's "AOT" rows in the paper config: the released weights written unmodified as a run's propagator."""
    from coprop.train import load_run
    from coprop.train.stages import published_propagator

    _, path = aot_file
    cfg = get_config("paper", image_size=64, audio_encoder="tiny", audio_insert_levels=0, propagator_weights=str(path))
    published_propagator(cfg, tmp_path / "aot")
    released = torch.load(path)["state_dict"]
    loaded = load_run(tmp_path / "aot").propagator.state_dict()
    assert sorted(loaded) == sorted("aot." + k for k in released)
    assert all(torch.equal(loaded["aot." + k], v) for k, v in released.items())
    with pytest.raises(ConfigError, match="audio_insert_levels=0"):
        published_propagator(cfg.replace(audio_insert_levels=1), tmp_path / "l1")


def test_train_cli_checks_the_aot_file(tmp_path, capsys):
    import importlib

    train_cli = importlib.import_module("coprop.train.cli")   # the package re-exports a function named cli
    assert train_cli.parser().parse_args(["propagator", "--aot-weights", "x.pth"]).aot_weights == "x.pth"
    with pytest.raises(SystemExit) as e:
        train_cli.cli(["propagator", "--config", "paper", "--aot-weights", str(tmp_path / "none.pth")])
    assert e.value.code == 2 and "none.pth: file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_propagator_in_the_pipeline():
    """CoProp streams with the AOT propagator as with the tiny one (64 px, random AOT weights): stream equal to
    predict, memory bounded (the check of tests/test_pipeline.py)."""
    import test_pipeline as tp

    torch.manual_seed(0)
    prop = build_propagator(get_config("paper", image_size=tp.S, audio_encoder="tiny"), allow_random=True).eval()
    tp.test_stream_matches_predict_and_keeps_memory_bounded(prop)
