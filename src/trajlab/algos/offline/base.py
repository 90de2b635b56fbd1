"""`OfflineAgent`: what every offline algorithm shares on top of `AgentBase`.

The agent keeps the data's statistics itself (observation normaliser as a module, reward scale as state), so a
raw `Batch` from a dataset can be handed to `compute_losses`/`update` by anyone (unlearning, influence, DP)
and a checkpoint acts identically after loading. Actions are learned in [-1, 1] and mapped to the env's box.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from trajlab.algos.base import AgentBase, RuntimeOptions
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch
from trajlab.core.spec import SpaceSpec
from trajlab.nn.normalizer import Normalizer


class OfflineAgent(AgentBase):
    """Base of the offline agents: data statistics, batch preprocessing and action scaling."""

    normalize_observations: bool = True
    """Subclasses (or configs via `__init__`) turn observation normalisation off where their paper does."""

    def __init__(self, spec: SpaceSpec, config: Any, *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()) -> None:
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.normalize_observations = bool(getattr(config, "normalize_observations", self.normalize_observations))
        self.reward_scale = 1.0
        self.reward_shift = 0.0
        self.obs_normalizer = Normalizer(spec.observation_dim).to(self.device)
        centre, half_range = spec.action_scale()
        self._action_centre = torch.as_tensor(centre, device=self.device)
        self._action_half_range = torch.as_tensor(half_range, device=self.device)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {**self.networks, "obs_normalizer": self.obs_normalizer}

    def prepare(self, dataset: Any) -> None:
        """Take the statistics this agent needs from the training data (before the first update)."""
        if self.normalize_observations:
            self.obs_normalizer.fit(dataset.observations)
        self.reward_scale, self.reward_shift = self.reward_transform(dataset)

    def reward_transform(self, dataset: Any) -> tuple[float, float]:
        """(scale, shift) applied as r * scale + shift; identity unless an algorithm's paper says otherwise."""
        return 1.0, 0.0

    def preprocess(self, batch: Batch) -> Batch:
        """Normalised observations, scaled rewards and actions in [-1, 1] (discrete actions untouched)."""
        actions = batch.actions
        if not self.spec.discrete:
            actions = (actions - self._action_centre) / self._action_half_range
        return batch.replace(
            observations=self.obs_normalizer(batch.observations),
            next_observations=self.obs_normalizer(batch.next_observations),
            rewards=batch.rewards * self.reward_scale + self.reward_shift,
            actions=actions,
        )

    def network_inputs(self, observations: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw observations and env-unit actions as the networks see them (for `q_value` on raw data)."""
        if not self.spec.discrete:
            actions = (actions - self._action_centre) / self._action_half_range
        return self.obs_normalizer(observations), actions

    @torch.no_grad()
    def _policy_action(self, observations: torch.Tensor, deterministic: bool) -> torch.Tensor:
        action = self.actor_action(self.obs_normalizer(observations), deterministic)
        if self.spec.discrete:
            return action
        return action * self._action_half_range + self._action_centre

    @abstractmethod
    def actor_action(self, observations: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Action in [-1, 1] (or an action index) for normalised observations; each algorithm defines it."""

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["networks"]["obs_normalizer"] = self.obs_normalizer.state_dict()
        state["reward_transform"] = [self.reward_scale, self.reward_shift]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.obs_normalizer.load_state_dict(state["networks"]["obs_normalizer"])
        scale, shift = state.get("reward_transform", [1.0, 0.0])
        self.reward_scale, self.reward_shift = float(scale), float(shift)


def returns_range_scale(dataset: Any, target: float = 1000.0) -> float:
    """target / (max episode return - min episode return): IQL's reward scaling for locomotion data."""
    returns = np.asarray(dataset.episode_returns())
    spread = float(returns.max() - returns.min()) if len(returns) else 0.0
    return target / spread if spread > 0 else 1.0


def check_action_space(name: str, spec: SpaceSpec, *, discrete: bool, other: str) -> None:
    """Refuse actions of the other kind: `name` serves discrete actions if `discrete`, else continuous ones;
    `other` is the algorithm to use for continuous actions instead."""
    if spec.discrete and not discrete:
        raise TrajlabError(f"{name} needs continuous actions; these actions are discrete")
    if discrete and not spec.discrete:
        raise TrajlabError(f"{name} needs discrete actions; use {other} for continuous ones")
