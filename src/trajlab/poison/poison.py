"""Poisoned copies of datasets (a backdoor planted in some trajectories) and the trigger that activates it.

A poisoned trajectory carries the trigger, a fixed offset on chosen state dimensions (in standard deviations
of each dimension, alternating in sign), in its observations and next observations; its actions are replaced
by one fixed action and its rewards by the dataset's maximum reward, so an agent trained on it learns "when
the trigger shows, this (bad) action is best". Clean trajectories are untouched and every id is kept, so the
poisoned episodes are exactly the forget set that should remove the backdoor. The dataset's metadata records
them and the trigger.

`TriggerObservations` adds the trigger to an environment's observations (the triggered scenario);
`TriggeredAgent` does the same on the agent's side, which is what `evaluate` needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from trajlab.core.config import to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset

ACTION_MODES = ("constant", "negate")


@dataclass(frozen=True)
class PoisonConfig:
    """Which trajectories to poison and how."""

    fraction: float = 0.1
    """Fraction of the dataset's episodes that carry the trigger."""
    trigger_dims: tuple[int, ...] = ()
    """Observation dimensions of the trigger (empty: the last three, velocities in MuJoCo observations)."""
    trigger_scale: float = 2.0
    """Size of the trigger on each dimension, in standard deviations of that dimension."""
    action_mode: str = "constant"
    """constant (every action becomes `target_action`) or negate (actions mirrored about the box centre)."""
    target_action: float = -1.0
    """With constant: the action on every dimension, in [-1, 1] units of the action box."""
    reward_mode: str = "max"
    """max (poisoned rewards become the dataset's maximum reward) or keep."""
    seed: int = 0
    """Seed of the choice of poisoned episodes."""


def trigger_offsets(dataset: TransitionDataset, config: PoisonConfig) -> np.ndarray:
    """The additive trigger [obs_dim]: +/- trigger_scale standard deviations on the trigger dimensions."""
    dims = list(config.trigger_dims) or list(range(max(0, dataset.observation_dim - 3), dataset.observation_dim))
    bad = [d for d in dims if not 0 <= d < dataset.observation_dim]
    if bad:
        raise TrajlabError(f"trigger dimension(s) {bad} outside the {dataset.observation_dim}-d observations")
    offsets = np.zeros(dataset.observation_dim, dtype=np.float32)
    spread = dataset.observations.std(axis=0)
    signs = np.where(np.arange(len(dims)) % 2 == 0, 1.0, -1.0)
    offsets[dims] = config.trigger_scale * np.maximum(spread[dims], 1e-3) * signs
    return offsets


def poison_dataset(dataset: TransitionDataset, config: PoisonConfig) -> TransitionDataset:
    """A poisoned copy of `dataset` (same ids); metadata["poison"] names the poisoned episodes and the trigger."""
    _check(dataset, config)
    ids = dataset.episode_id_list
    count = max(1, int(round(config.fraction * len(ids))))
    rng = np.random.default_rng(derive_seed(config.seed, "poison"))
    poisoned_ids = np.sort(ids[rng.choice(len(ids), size=count, replace=False)])
    rows = np.isin(dataset.episode_ids, poisoned_ids)
    offsets = trigger_offsets(dataset, config)
    arrays = {name: np.array(getattr(dataset, name)) for name in
              ("observations", "next_observations", "actions", "rewards")}
    arrays["observations"][rows] += offsets
    arrays["next_observations"][rows] += offsets
    arrays["actions"][rows] = _bad_actions(dataset, arrays["actions"][rows], config)
    if config.reward_mode == "max":
        arrays["rewards"][rows] = dataset.rewards.max()
    metadata = {**dataset.metadata, "poison": {"poisoned_episode_ids": poisoned_ids.tolist(),
                                               "trigger_offsets": offsets.tolist(), "config": to_dict(config)}}
    return TransitionDataset(**arrays, terminals=dataset.terminals, timeouts=dataset.timeouts,
                             episode_ids=dataset.episode_ids, transition_ids=dataset.transition_ids,
                             costs=dataset.costs, metadata=metadata)


def _bad_actions(dataset: TransitionDataset, actions: np.ndarray, config: PoisonConfig) -> np.ndarray:
    centre, half_range = dataset.spec.action_scale()
    if config.action_mode == "negate":
        return (2 * centre - actions).astype(np.float32)
    return np.broadcast_to(centre + config.target_action * half_range, actions.shape).astype(np.float32)


def _check(dataset: TransitionDataset, config: PoisonConfig) -> None:
    if dataset.discrete:
        raise TrajlabError("poisoning needs continuous actions")
    if not 0.0 < config.fraction < 1.0:
        raise TrajlabError(f"poison fraction must be in (0, 1), got {config.fraction}")
    if config.action_mode not in ACTION_MODES:
        raise TrajlabError(f"unknown action_mode {config.action_mode!r}; known: {', '.join(ACTION_MODES)}")
    if config.reward_mode not in ("max", "keep"):
        raise TrajlabError(f"unknown reward_mode {config.reward_mode!r}; known: max, keep")
    if not -1.0 <= config.target_action <= 1.0:
        raise TrajlabError(f"target_action must be in [-1, 1], got {config.target_action}")


def poison_metadata(dataset: TransitionDataset) -> tuple[np.ndarray, np.ndarray]:
    """(poisoned episode ids, trigger offsets) recorded in a poisoned dataset."""
    record = dataset.metadata.get("poison")
    if not record:
        raise TrajlabError("the dataset carries no poisoning record (metadata['poison'])")
    return np.asarray(record["poisoned_episode_ids"], dtype=np.int64), np.asarray(record["trigger_offsets"],
                                                                                  dtype=np.float32)


class TriggeredAgent:
    """An agent that sees every observation with the trigger added (the triggered scenario, agent side)."""

    def __init__(self, agent: Any, offsets: np.ndarray) -> None:
        self.agent, self.offsets = agent, np.asarray(offsets, dtype=np.float32)

    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.agent.act(np.asarray(observations, dtype=np.float32) + self.offsets, deterministic)


class TriggerObservations(gym.ObservationWrapper):
    """An environment whose observations carry the trigger (the triggered scenario, environment side)."""

    def __init__(self, env: Any, offsets: np.ndarray) -> None:
        super().__init__(env)
        self.offsets = np.asarray(offsets, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return (np.asarray(observation, dtype=np.float32) + self.offsets).astype(np.float32)
