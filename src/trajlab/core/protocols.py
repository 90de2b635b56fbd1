"""The contracts every agent keeps: a Batch in, per-sample losses out, and `update()` owning the optimisers.

Unlearning, influence and differential privacy all reuse an agent's `compute_losses(batch)`; nothing copies an
algorithm to change its loss. A user's own agent that follows `Agent` works with every trajlab method, and
`trajlab.testing.check_agent` verifies that it does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Batch:
    """A minibatch of transitions as tensors, carrying the ids of the transitions it holds.

    `weights` is an optional per-sample weight (shape [B]) that `update()` applies to every per-sample loss;
    unlearning and influence methods use it to up- or down-weight chosen experiences without new code paths.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    next_observations: Tensor
    terminals: Tensor
    transition_ids: Tensor
    episode_ids: Tensor
    timeouts: Tensor | None = None
    costs: Tensor | None = None
    weights: Tensor | None = None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def to(self, device: str | torch.device) -> Batch:
        moved = {f.name: _move(getattr(self, f.name), device) for f in fields(self)}
        return Batch(**moved)

    def replace(self, **changes: Any) -> Batch:
        """A copy with some fields changed (for example negated rewards or new weights)."""
        return dataclasses.replace(self, **changes)

    def index(self, selection: Tensor) -> Batch:
        """The sub-batch at the given positions."""
        picked = {f.name: _take(getattr(self, f.name), selection) for f in fields(self)}
        return Batch(**picked)

    def weighted_mean(self, per_sample: Tensor) -> Tensor:
        """Mean of a per-sample loss, using `weights` when present."""
        if self.weights is None:
            return per_sample.mean()
        return (per_sample * self.weights).sum() / self.weights.sum().clamp_min(1e-12)


def _move(value: Tensor | None, device: str | torch.device) -> Tensor | None:
    return None if value is None else value.to(device, non_blocking=True)


def _take(value: Tensor | None, selection: Tensor) -> Tensor | None:
    return None if value is None else value[selection]


@dataclass
class LossOutput:
    """Per-sample loss terms (each a tensor of shape [B]); algorithms subclass this with their own fields.

    Fields that are not per-sample tensors (diagnostics such as Q-values) may be added as `Tensor | None`
    with a name that starts with `info_`; `terms()` skips them.
    """

    def terms(self) -> dict[str, Tensor]:
        """The per-sample loss terms, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.name.startswith("info_") and isinstance(getattr(self, f.name), Tensor)
        }

    def __iter__(self) -> Iterator[tuple[str, Tensor]]:
        return iter(self.terms().items())

    def means(self) -> dict[str, float]:
        return {name: float(value.detach().mean()) for name, value in self.terms().items()}


@runtime_checkable
class Agent(Protocol):
    """What every trajlab method needs of an agent."""

    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations ([N, obs_dim] -> [N, act_dim], or [N] for discrete)."""

    def compute_losses(self, batch: Batch) -> LossOutput:
        """Per-sample losses on a batch, without touching optimisers or target networks."""

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on a batch; the only method that steps optimisers and moves target networks."""

    def modules(self) -> dict[str, nn.Module]:
        """The trainable and target networks, by name."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimiser states, counters (nested dicts of tensors/scalars)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned."""
