"""Observation normalisation whose statistics live in module buffers, so checkpoints carry them."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """(x - mean) / std with fixed statistics (identity until `fit` is called)."""

    def __init__(self, dim: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, data: np.ndarray | Tensor) -> Normalizer:
        values = torch.as_tensor(np.array(data, dtype=np.float32))  # a copy: datasets hold read-only arrays
        self.mean.copy_(values.mean(dim=0))
        self.std.copy_(values.std(dim=0, unbiased=False) + self.eps)
        return self

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std
