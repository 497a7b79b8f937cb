"""The model suite behind the ablations, and the tables computed from it (paper §4: Tables 1, 2a, 2b, 4, 5, 6;
Fig. 3 alignment, Fig. 4 plug-and-play).

A *suite* is one folder of trained models per training seed (see ``suite``). ``ensure_suite`` trains whatever is
missing (finished stages are never retrained); ``Suite`` loads a seed's models; a ``Method`` names one way of
segmenting a clip (baseline, or Co-Prop with a choice of keyframe model, control-point source and propagator);
``evaluation`` runs methods over the test clips and caches the predictions on disk; the ``table*`` functions turn
evaluations into DataFrames with the paper's numbers beside.

The package, in the order its modules import each other (each imports only those above it):

    settings    training seeds, paths from the repository root, CPU threads, device
    clips       Data (which dataset), MOC-style clips, the walkthrough clip, GT control points
    budget      SUITES / VARIANTS: how many steps each model of a suite trains, what it starts from
    suite       ensure_suite (training), Suite (loading), the text-guided variant
    sources     control-point sources fitted on the training data, cached per seed
    methods     Method, ClipResult, run_method (predictions cached on disk), keyframe_logits
    scoring     score (J, F, Alignment Rates), per_frame_j, aligned_frames, clip_scores
    evaluation  Evaluation (many methods x seeds on one test set), evaluation()
    statistics  two-level bootstrap (seeds x clips) intervals, paired differences, verdicts (numpy only)
    intervals   table cells with intervals from an Evaluation's predictions, the paper's claims checked
    tables      paper Tables 1, 2a, 2b, 4, 5, 6 and the claims each tests
    headline    reports/headline.json (coprop demo)
    alignment   Alignment Rate tables (paper Fig. 3), per-frame object names
    figures     Fig. 3, Fig. 4, alignment timelines, stacked figures

``from coprop.experiments import X`` works for every public name of these modules.
"""
from coprop.experiments.alignment import alignment_methods, alignment_report, alignment_table, frame_objects
from coprop.experiments.clips import (Data, choose_walkthrough_clip, gt_control_points, is_moc, object_conversion,
                                      pick_clip, sounding_objects)
from coprop.experiments.evaluation import DATASET_OF, Evaluation, evaluation
from coprop.experiments.figures import fig3, fig4, stack_figures, timeline_figure
from coprop.experiments.methods import (BASELINE, COPROP, COPROP_GT, KEYFRAME_ALONE, PROPAGATOR_FROM_GT, ClipResult,
                                        Method, keyframe_logits, run_method)
from coprop.experiments.scoring import aligned_frames, clip_scores, per_frame_j, score
from coprop.experiments.settings import parse_seeds, pick_device, resolve_path, set_threads
from coprop.experiments.sources import cached_source, fit_sources
from coprop.experiments.suite import (SUITES, VARIANTS, Suite, ensure_audio_encoder, ensure_suite, prepared_data,
                                      stage_dependencies, suite_config, suite_defaults, suite_train_clips,
                                      text_labeler)
from coprop.experiments.tables import (NO_LLM, all_methods, claims, core_methods, rcpg_stand_in, table1,
                                       table1_methods, table2a, table2a_methods, table2b, table2b_methods, table4,
                                       table4_methods, table5, table5_methods, table6)
from coprop.experiments.headline import headline

__all__ = [
    "BASELINE", "COPROP", "COPROP_GT", "DATASET_OF", "NO_LLM", "SUITES", "VARIANTS", "ClipResult", "Data",
    "choose_walkthrough_clip", "object_conversion", "sounding_objects", "suite_defaults",
    "Evaluation", "Method", "Suite", "aligned_frames", "alignment_methods", "alignment_report", "alignment_table",
    "all_methods", "cached_source", "clip_scores", "ensure_suite", "evaluation", "fig3", "fig4", "fit_sources",
    "frame_objects", "gt_control_points", "is_moc", "keyframe_logits", "parse_seeds", "per_frame_j", "pick_clip",
    "pick_device", "rcpg_stand_in", "resolve_path", "run_method", "score", "set_threads", "stack_figures",
    "suite_config", "table1", "table1_methods", "table2a", "table2a_methods", "table2b", "table2b_methods",
    "table4", "table4_methods", "table5", "table5_methods", "table6", "text_labeler", "timeline_figure",
    "KEYFRAME_ALONE", "PROPAGATOR_FROM_GT", "claims", "core_methods", "headline", "prepared_data",
    "stage_dependencies", "suite_train_clips", "ensure_audio_encoder",
]
