"""Collect a dataset by rolling out a policy (or uniform random actions) in an environment.

Terminals and timeouts are kept apart as D4RL does: `terminated` (the task ended; no bootstrapping) is a
terminal, `truncated` (the step cap) is a timeout, and the last episode, cut when the requested number of
transitions is reached, ends with neither. Each row's next observation is the one the environment returned for
that step, also at a timeout (the observation after the reset is never used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.spec import SpaceSpec
from trajlab.data.dataset import TransitionDataset
from trajlab.envs.registry import make

PolicyAct = Callable[[np.ndarray, bool], np.ndarray]
"""An agent's `act`: observations [N, obs_dim] and a deterministic flag -> actions [N, act_dim] (or [N])."""


@dataclass
class _Record:
    """Preallocated arrays for `size` transitions."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_ids: np.ndarray
    costs: np.ndarray

    @classmethod
    def empty(cls, size: int, spec: SpaceSpec) -> _Record:
        actions = np.zeros(size, dtype=np.int64) if spec.discrete else np.zeros((size, spec.action_dim), np.float32)
        return cls(
            observations=np.zeros((size, spec.observation_dim), np.float32), actions=actions,
            rewards=np.zeros(size, np.float32), next_observations=np.zeros((size, spec.observation_dim), np.float32),
            terminals=np.zeros(size, bool), timeouts=np.zeros(size, bool), episode_ids=np.zeros(size, np.int64),
            costs=np.zeros(size, np.float32),
        )


def collect(policy_act: PolicyAct | None, env_id: str, *, num_transitions: int, seed: int,
            deterministic: bool = False, metadata: dict[str, Any] | None = None) -> TransitionDataset:
    """`num_transitions` transitions of `policy_act` (None: uniform random actions) in `env_id`.

    Episode ids count 0, 1, ... in collection order and transition ids 0..num_transitions-1. Metadata holds
    the env id, its action bounds, the seed and the policy kind, then the entries of `metadata`. Costs are kept
    when the environment reports a `cost` in its step info.
    """
    if num_transitions <= 0:
        raise TrajlabError(f"num_transitions must be positive, got {num_transitions}")
    env = make(env_id, seed=seed)
    try:
        spec = SpaceSpec.from_env(env)
        record, has_costs = _roll_out(env, spec, policy_act, num_transitions, seed, deterministic)
    finally:
        env.close()
    return TransitionDataset(
        observations=record.observations, actions=record.actions, rewards=record.rewards,
        next_observations=record.next_observations, terminals=record.terminals, timeouts=record.timeouts,
        episode_ids=record.episode_ids, transition_ids=np.arange(num_transitions, dtype=np.int64),
        costs=record.costs if has_costs else None,
        metadata={**_space_metadata(env_id, spec), "collection_seed": seed,
                  "policy": "uniform random" if policy_act is None else "given policy", **(metadata or {})},
    )


def _roll_out(env: Any, spec: SpaceSpec, policy_act: PolicyAct | None, size: int, seed: int,
              deterministic: bool) -> tuple[_Record, bool]:
    record = _Record.empty(size, spec)
    low, high = (None, None) if spec.discrete else (np.asarray(spec.action_low), np.asarray(spec.action_high))
    observation, _ = env.reset(seed=seed)
    episode, has_costs = 0, False
    for row in range(size):
        flat = np.asarray(observation, dtype=np.float32).ravel()
        if policy_act is None:
            action = env.action_space.sample()
        else:
            action = np.asarray(policy_act(flat[None], deterministic))[0]
        if not spec.discrete:
            # the stored action is the one the environment executed
            action = np.clip(np.asarray(action, dtype=np.float32).reshape(spec.action_dim), low, high)
        next_observation, reward, terminated, truncated, info = env.step(action)
        record.observations[row] = flat
        record.actions[row] = action
        record.rewards[row] = reward
        record.next_observations[row] = np.asarray(next_observation, dtype=np.float32).ravel()
        record.terminals[row], record.timeouts[row] = terminated, truncated and not terminated
        record.episode_ids[row] = episode
        if "cost" in info:
            record.costs[row], has_costs = float(info["cost"]), True
        observation = next_observation
        if terminated or truncated:
            observation, _ = env.reset()
            episode += 1
    return record, has_costs


def _space_metadata(env_id: str, spec: SpaceSpec) -> dict[str, Any]:
    if spec.discrete:
        return {"env_id": env_id, "num_actions": spec.action_dim}
    return {"env_id": env_id, "action_low": list(spec.action_low or ()), "action_high": list(spec.action_high or ())}
