"""Minibatch sampling from tensors kept on the training device: no per-step NumPy work or copies."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from trajlab.core.protocols import Batch
from trajlab.core.seeding import torch_generator


class TensorSampler:
    """Uniform sampling with replacement from a dataset held as tensors on `device`.

    `weights` (one per row, optional) gives each sampled transition a loss weight through `Batch.weights`;
    `masks` (one member mask [K] per row, optional: turn-over dropout) goes into `Batch.masks`. Neither changes
    which rows are drawn.
    """

    def __init__(self, columns: Mapping[str, np.ndarray], *, device: str | torch.device = "cpu", seed: int = 0,
                 masks: np.ndarray | None = None) -> None:
        self.device = torch.device(device)
        self.size = len(columns["rewards"])
        if self.size == 0:
            from trajlab.core.errors import TrajlabError

            raise TrajlabError("cannot sample from an empty dataset")
        as_tensor = lambda array: torch.from_numpy(np.array(array)).to(self.device)  # noqa: E731
        self.observations = as_tensor(columns["observations"])
        self.actions = as_tensor(columns["actions"])
        self.rewards = as_tensor(columns["rewards"])
        self.next_observations = as_tensor(columns["next_observations"])
        self.terminals = as_tensor(columns["terminals"]).float()
        self.timeouts = as_tensor(columns["timeouts"]).float()
        self.transition_ids = as_tensor(columns["transition_ids"])
        self.episode_ids = as_tensor(columns["episode_ids"])
        self.costs = None if columns.get("costs") is None else as_tensor(columns["costs"])
        self.row_weights: torch.Tensor | None = None
        self.masks = None if masks is None else self._row_masks(masks)
        self.generator = torch_generator(seed, self.device)

    def sample(self, batch_size: int) -> Batch:
        rows = torch.randint(0, self.size, (batch_size,), device=self.device, generator=self.generator)
        return self.batch_at(rows)

    def batch_at(self, rows: torch.Tensor) -> Batch:
        return Batch(
            observations=self.observations[rows],
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            next_observations=self.next_observations[rows],
            terminals=self.terminals[rows],
            timeouts=self.timeouts[rows],
            transition_ids=self.transition_ids[rows],
            episode_ids=self.episode_ids[rows],
            costs=None if self.costs is None else self.costs[rows],
            weights=None if self.row_weights is None else self.row_weights[rows],
            masks=None if self.masks is None else self.masks[rows],
        )

    def _row_masks(self, masks: np.ndarray) -> torch.Tensor:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or len(masks) != self.size:
            raise ValueError(f"masks of shape {masks.shape} do not fit {self.size} rows: expected [{self.size}, K]")
        return torch.from_numpy(masks).to(self.device)

    def get_state(self) -> torch.Tensor:
        """Generator state, for resuming a run with the same batch sequence."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)
