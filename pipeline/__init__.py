"""Reproducible benchmark pipeline for autoencoders and the deep networks they pre-train."""

__version__ = "0.1.0"
