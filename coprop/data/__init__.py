"""Data contracts and readers. Imports nothing else of coprop (see DESIGN.md §2)."""
from coprop.data.clip import Clip

__all__ = ["Clip", "open_dataset"]


def open_dataset(root, subset, split, **kwargs):
    """Lazy sequence of :class:`Clip` for AVSBench ``subset`` ('s4', 'ms3', 'avss') and ``split``."""
    from coprop.data.avsbench import open_dataset as _open

    return _open(root, subset, split, **kwargs)
