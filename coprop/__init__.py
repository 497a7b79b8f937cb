"""coprop: a research workbench for audio-visual video segmentation with the Co-Prop method."""

__version__ = "0.1.0"
