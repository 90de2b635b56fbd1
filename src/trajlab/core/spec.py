"""What an agent needs to know of an environment's spaces, taken from a dataset or a Gymnasium env."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SpaceSpec:
    """Observation and action spaces in the plain form that checkpoints store."""

    observation_dim: int
    """Length of a flat observation vector."""
    action_dim: int
    """Length of a continuous action vector, or the number of actions when `discrete`."""
    discrete: bool = False
    """True for a finite action set (actions are integers in [0, action_dim))."""
    action_low: tuple[float, ...] | None = None
    """Lower bound of each continuous action dimension (None for discrete)."""
    action_high: tuple[float, ...] | None = None
    """Upper bound of each continuous action dimension (None for discrete)."""

    @classmethod
    def from_env(cls, env: Any) -> SpaceSpec:
        observation_space = getattr(env, "single_observation_space", env.observation_space)
        action_space = getattr(env, "single_action_space", env.action_space)
        observation_dim = int(np.prod(observation_space.shape))
        if hasattr(action_space, "n"):
            return cls(observation_dim, int(action_space.n), discrete=True)
        low = tuple(float(x) for x in np.asarray(action_space.low).ravel())
        high = tuple(float(x) for x in np.asarray(action_space.high).ravel())
        return cls(observation_dim, len(low), False, low, high)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SpaceSpec:
        low, high = values.get("action_low"), values.get("action_high")
        return cls(
            int(values["observation_dim"]),
            int(values["action_dim"]),
            bool(values.get("discrete", False)),
            None if low is None else tuple(float(x) for x in low),
            None if high is None else tuple(float(x) for x in high),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "observation_dim": self.observation_dim,
            "action_dim": self.action_dim,
            "discrete": self.discrete,
            "action_low": None if self.action_low is None else list(self.action_low),
            "action_high": None if self.action_high is None else list(self.action_high),
        }

    def action_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """(centre, half-range) that maps [-1, 1] onto the action box."""
        if self.action_low is None or self.action_high is None:
            ones = np.ones(self.action_dim, dtype=np.float32)
            return np.zeros(self.action_dim, dtype=np.float32), ones
        low = np.asarray(self.action_low, dtype=np.float32)
        high = np.asarray(self.action_high, dtype=np.float32)
        return (high + low) / 2, (high - low) / 2
