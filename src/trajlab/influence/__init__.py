"""Influence of experiences on an agent: PIToD (turn-over dropout) estimates from one training run."""
