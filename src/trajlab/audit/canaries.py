"""Canary trajectories: k distinct, random, flagged episodes planted in a COPY of a dataset, so that a membership
test can be checked on known members (an agent trained on the copy carries them) and known non-members (one
trained or retrained without them does not).

A canary walks through a random region of the state space (the data's mean plus a few of its standard
deviations in a random direction), with its own random constant action and reward: nothing else in the data
looks like it, so what an agent learns of it shows only on its own states. Canaries get fresh episode and
transition ids, and the copy's metadata lists them under `canary_episode_ids`; a user's dataset is never
changed in place.
"""

from __future__ import annotations

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset

CANARY_KEY = "canary_episode_ids"
"""Dataset metadata key listing the planted canaries' episode ids."""


def canary_ids(dataset: TransitionDataset) -> list[int]:
    """The canary episode ids a dataset's metadata records (empty when it has none)."""
    return [int(i) for i in dataset.metadata.get(CANARY_KEY, [])]


def plant_canaries(dataset: TransitionDataset, count: int, *, seed: int = 0, length: int | None = None,
                   distance: float = 3.0) -> TransitionDataset:
    """A copy of `dataset` with `count` canary episodes appended (`length` steps each; default: the median
    episode length), `distance` data standard deviations from its mean; their ids are in the metadata."""
    if count < 1:
        raise TrajlabError(f"canaries: count must be at least 1, got {count}")
    if dataset.discrete:
        raise TrajlabError("canaries: datasets with discrete actions are not supported yet")
    if canary_ids(dataset):
        raise TrajlabError(f"the dataset already holds canaries {canary_ids(dataset)[:5]}")
    steps = int(length or np.median(dataset.episode_lengths()))
    rng = np.random.default_rng(derive_seed(seed, "canaries"))
    first_episode, first_row = int(dataset.episode_ids.max()) + 1, int(dataset.transition_ids.max()) + 1
    canaries = _canary_rows(dataset, count, steps, rng, distance)
    n = count * steps
    planted = TransitionDataset(
        **canaries, terminals=np.zeros(n, dtype=bool), timeouts=np.tile(np.arange(steps) == steps - 1, count),
        episode_ids=np.repeat(np.arange(first_episode, first_episode + count), steps),
        transition_ids=np.arange(first_row, first_row + n), costs=None if dataset.costs is None else
        np.zeros(n, dtype=np.float32), metadata=dict(dataset.metadata))
    ids = list(range(first_episode, first_episode + count))
    return dataset.concat(planted).with_metadata(**{CANARY_KEY: ids})


def _canary_rows(dataset: TransitionDataset, count: int, steps: int, rng: np.random.Generator,
                 distance: float) -> dict[str, np.ndarray]:
    """Observations, actions, rewards and next observations of `count` random walks, each in its own region."""
    mean, std = dataset.observations.mean(0), dataset.observations.std(0) + 1e-6
    directions = rng.normal(size=(count, dataset.observation_dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    starts = mean + distance * std * directions
    drift = 0.02 * std * rng.normal(size=(count, dataset.observation_dim))
    path = starts[:, None] + drift[:, None] * np.arange(steps + 1)[None, :, None]
    path = path + 0.01 * std * rng.normal(size=path.shape)
    low, high = np.asarray(dataset.spec.action_low), np.asarray(dataset.spec.action_high)
    actions = rng.uniform(low + 0.1 * (high - low), high - 0.1 * (high - low), size=(count, 1, dataset.action_dim))
    rewards = rng.uniform(dataset.rewards.min(), dataset.rewards.max(), size=(count, 1))
    flat = dataset.observation_dim
    return {"observations": path[:, :-1].reshape(-1, flat).astype(np.float32),
            "next_observations": path[:, 1:].reshape(-1, flat).astype(np.float32),
            "actions": np.repeat(actions, steps, axis=1).reshape(-1, dataset.action_dim).astype(np.float32),
            "rewards": np.repeat(rewards, steps, axis=1).reshape(-1).astype(np.float32)}
