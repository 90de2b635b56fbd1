"""Random-reward baseline: relabel the forget set's rewards with uninformative values and keep training.

The forget set D_u keeps its states and actions but its rewards are replaced by values spread evenly between
the dataset's minimum and maximum reward, assigned to its transitions in a seeded random order; the original
agent then trains on D_r together with this relabelled D_u', so what it had learned from D_u's rewards is
overwritten by noise of the same range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.core.protocols import Agent, require
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset
from trajlab.training.steps import batch_size_of, check_steps, copy_agent, sampler_for, train_steps
from trajlab.unlearning.base import register_method, split_request, validate_request


@dataclass(frozen=True)
class RandomRewardConfig:
    """Training on D_r and the relabelled D_u' (defaults: the paper's setting)."""

    steps: int = 10_000
    """Updates on D_r together with D_u'."""
    batch_size: int | None = None
    """Transitions per update (None: the agent's own batch size)."""
    seed: int = 0
    """Seed of the reward assignment and of the batch sampler."""


def spread_rewards(count: int, low: float, high: float, seed: int) -> np.ndarray:
    """`count` values evenly spaced over [low, high], in a seeded random order."""
    values = np.linspace(low, high, count, dtype=np.float64)
    return np.random.default_rng(seed).permutation(values).astype(np.float32)


def relabelled_forget_set(dataset: TransitionDataset, forget: TransitionDataset, seed: int) -> TransitionDataset:
    """D_u with rewards spread evenly between the whole dataset's minimum and maximum reward."""
    low, high = float(dataset.rewards.min()), float(dataset.rewards.max())
    return forget.with_rewards(spread_rewards(len(forget), low, high, derive_seed(seed, "random-reward")))


@register_method("random-reward", RandomRewardConfig)
def unlearn(agent: Any, dataset: TransitionDataset, forget_episode_ids: Iterable[int],
            config: RandomRewardConfig = RandomRewardConfig()) -> Any:
    """A copy of `agent` trained on D_r plus the forget set with random rewards."""
    forget_ids = validate_request(agent, dataset, forget_episode_ids)
    require(agent, Agent, needed_by="random-reward unlearning")
    check_steps(steps=config.steps)
    remaining, forget = split_request(dataset, forget_ids)
    training_data = remaining.concat(relabelled_forget_set(dataset, forget, config.seed))
    unlearned = copy_agent(agent)
    sampler = sampler_for(unlearned, training_data, config.seed, "random-reward")
    train_steps(unlearned, sampler, config.steps, batch_size_of(unlearned, config.batch_size))
    return unlearned
