"""Shared fixtures: tiny synthetic datasets, one torch thread per test worker (pytest -n 2 on 2 cores)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

from trajlab.testing import synthetic_dataset  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def tiny_dataset():
    """6 episodes x 20 steps, 4-d observations, 2-d actions in [-1, 1]."""
    return synthetic_dataset()


@pytest.fixture
def tiny_discrete_dataset():
    """6 episodes x 20 steps, 4-d observations, 3 discrete actions."""
    return synthetic_dataset(discrete=True, action_dim=3)
