"""Plain training steps shared by every method that trains an existing agent further (unlearning's fine-tuning,
auditors' shadow agents, influence's retraining): copies, batch sizes, seeded samplers, counted updates.

`train_steps` is the training `Loop` with nothing scheduled (no metrics rows, evaluations or checkpoints), so it
costs no more than the updates themselves: methods call it for thousands of updates in tight loops."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import device_of
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset
from trajlab.training.loop import Loop


def copy_agent(agent: Any) -> Any:
    """An independent copy (weights, optimiser states, target networks, counters); the original stays as it is."""
    return copy.deepcopy(agent)


def batch_size_of(agent: Any, override: int | None) -> int:
    """The batch size to train with: the method's override, else the agent's own config."""
    if override is not None:
        if override <= 0:
            raise TrajlabError(f"batch_size must be positive, got {override}")
        return override
    size = getattr(getattr(agent, "config", None), "batch_size", None)
    if size is None:
        raise TrajlabError(f"{type(agent).__name__} has no config.batch_size; set batch_size in the method config")
    return int(size)


def check_steps(**steps: int) -> None:
    """Step counts must be non-negative integers."""
    for name, value in steps.items():
        if int(value) != value or value < 0:
            raise TrajlabError(f"{name} must be a non-negative integer, got {value}")


def sampler_for(agent: Any, dataset: TransitionDataset, seed: int, *names: str | int) -> Any:
    """A tensor sampler on the agent's device, seeded by a named child of `seed`; a masked offline agent's
    batches carry their episode groups' masks, so training further keeps every group on its own members."""
    return dataset.sampler(device=device_of(agent), seed=derive_seed(seed, *names), masks=dataset_masks(agent, dataset))


def dataset_masks(agent: Any, dataset: TransitionDataset) -> Any:
    """Each row's turn-over dropout mask [N, K] for an agent with masked ensembles over episode groups
    (`episode_group_masks`: masked_td3_bc, masked_iql), from the rows' episode ids; None for any other agent."""
    group_masks = getattr(agent, "episode_group_masks", None)
    return None if group_masks is None else group_masks.masks_of(dataset.episode_ids)


_UPDATE_LISTENER: ContextVar[Callable[[], None] | None] = ContextVar("trajlab_update_listener", default=None)


@contextmanager
def counting_updates(listener: Callable[[], None]) -> Iterator[None]:
    """Within the block, `listener()` is called after every update `train_steps` makes in this process (every
    method's and every in-process shadow's): what progress bars count."""
    token = _UPDATE_LISTENER.set(listener)
    try:
        yield
    finally:
        _UPDATE_LISTENER.reset(token)


def train_steps(agent: Any, sampler: Any, steps: int, batch_size: int) -> dict[str, float]:
    """`steps` ordinary updates on batches from `sampler`; the last update's metrics."""
    last: dict[str, float] = {}

    def update(step: int) -> None:
        nonlocal last
        last = agent.update(sampler.sample(batch_size))

    listener = _UPDATE_LISTENER.get()
    Loop(update, steps).run(show=None if listener is None else lambda step: listener())
    return last
