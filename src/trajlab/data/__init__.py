"""Datasets of transitions with stable ids, their file formats, generation and splits."""

from trajlab.data.dataset import Episode, TransitionDataset

__all__ = ["Episode", "TransitionDataset"]
