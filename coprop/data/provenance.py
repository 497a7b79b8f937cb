"""Where data came from, in the words every artefact carries: a table, figure or metrics.json measured on the
synthetic benchmark says so, so it cannot be mistaken for AVSBench (DESIGN.md §5). The data layer owns these
labels (``coprop.data.synth.summary`` prints one); the reports read them from here."""
from __future__ import annotations

SYNTHETIC_NOTE = "Data: coprop synthetic source-conversion benchmark (synthetic, not AVSBench)."
AVSBENCH_NOTE = "Data: AVSBench."


def data_note(synthetic: bool) -> str:
    """The label for data that is (``synthetic=True``) or is not the synthetic benchmark."""
    return SYNTHETIC_NOTE if synthetic else AVSBENCH_NOTE
