"""Co-Prop: control points -> segments -> keyframe masks -> frame-by-frame audio-insert propagation.

    pipe = CoProp(keyframe_model, propagator, source=get_source("gt"))
    pred = pipe.predict(clip)                      # Prediction: logits [T,K,H,W], control points, timings
    stream = pipe.stream(flags)                    # or a callable (t, frame, logmel) -> bool
    logits = stream.push(frame_uint8, logmel)      # one frame at a time, bounded memory

A segment is a run of frames that starts at a control point. Its first frame (the keyframe) is
segmented by the keyframe model; the propagator is restarted from that mask and carries it through
the rest of the segment, one frame at a time, with that frame's audio inserted. Any segmenter can be
the keyframe model (paper Fig. 4): an image-level one (``forward(image, audio, text_labels)``, e.g.
KeyframeProcessor) or a clip-level one (``forward(frames, audio, text_labels)``, e.g. the
SimultaneousBaseline, whose keyframe logits are taken from its output over the segment or the clip).

Output channels: binary (K = 1) holds the log-odds of the object against background; semantic
(K = num_classes) gives each class present in the keyframe mask its own identity and scatters the
propagated logits back to those classes; classes absent from the keyframe sit ``ABSENT_MARGIN`` below
every present channel.

Modules, each importing only those above it: ``config`` (PipelineConfig), ``results`` (Prediction,
DatasetPredictions), ``keyframes`` (KeyframeAdapter), ``segments`` (control points -> segments), ``stream``
(CoPropStream: one frame at a time), ``predict`` (CoProp: clips and datasets, opens streams).
"""
from coprop.pipeline.config import PipelineConfig
from coprop.pipeline.keyframes import KeyframeAdapter
from coprop.pipeline.predict import CoProp
from coprop.pipeline.results import DatasetPredictions, Prediction
from coprop.pipeline.segments import segments, validate_control_points
from coprop.pipeline.stream import ABSENT_MARGIN, CoPropStream, StageClock

__all__ = ["ABSENT_MARGIN", "CoProp", "CoPropStream", "DatasetPredictions", "KeyframeAdapter", "PipelineConfig",
           "Prediction", "StageClock", "segments", "validate_control_points"]
