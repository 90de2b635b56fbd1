"""Explaining behaviour from episode videos: Deep State Identifier (critical states), F1@tolerance, baselines."""
