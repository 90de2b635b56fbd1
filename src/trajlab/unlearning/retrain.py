"""Exact unlearning: train a new agent from scratch on the remaining data D_r.

The result is, by construction, an agent that never saw the forget set: the reference every approximate
method is measured against, at the full cost of training. It is built and trained exactly as `trajlab train`
does (same constructor, data statistics from D_r, sampler seeded by `derive_seed(seed, "sampler")`, the same
number of updates), so retraining equals running `trajlab train` on `dataset.without(ids)` with the same seed.
That asks of the agent, beyond `Agent`: Rebuildable and Preparable, and Counted when `steps` is not given
(`required_capabilities`); its `device` (OnDevice) is used where it has one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trajlab.algos.base import RuntimeOptions
from trajlab.core.protocols import Agent, Counted, Preparable, Rebuildable, device_of, require
from trajlab.core.spec import SpaceSpec
from trajlab.data.dataset import TransitionDataset
from trajlab.training.offline import prepare_training
from trajlab.training.steps import check_steps, train_steps
from trajlab.unlearning.base import register_method, split_request, validate_request


@dataclass(frozen=True)
class RetrainConfig:
    """Retraining from scratch on D_r."""

    steps: int | None = None
    """Updates (None: as many as the original agent had, its `num_updates`)."""
    seed: int | None = None
    """Seed of the new agent and its sampler (None: the original agent's seed)."""


def train_from_scratch(agent_class: type, spec: SpaceSpec, agent_config: Any, dataset: TransitionDataset, *,
                       steps: int, seed: int, device: str = "cpu", runtime: RuntimeOptions = RuntimeOptions()) -> Any:
    """A new agent trained on `dataset` the way `trajlab train` trains one, without a run directory."""
    agent, sampler = prepare_training(agent_class, agent_config, dataset, seed=seed, device=device, spec=spec,
                                      runtime=runtime)
    train_steps(agent, sampler, steps, int(agent_config.batch_size))
    return agent


def required_capabilities(config: RetrainConfig) -> tuple[type, ...]:
    """What retraining needs of an agent with these settings."""
    return (Agent, Rebuildable, Preparable, *((Counted,) if config.steps is None else ()))


@register_method("retrain", RetrainConfig, exact=True)
def unlearn(agent: Any, dataset: TransitionDataset, forget_episode_ids: Iterable[int],
            config: RetrainConfig = RetrainConfig()) -> Any:
    """A new agent of the same algorithm and config, trained from scratch without the forget set."""
    forget_ids = validate_request(agent, dataset, forget_episode_ids)
    require(agent, *required_capabilities(config), needed_by="retraining")
    steps = int(agent.num_updates if config.steps is None else config.steps)
    check_steps(steps=steps)
    seed = int(agent.seed if config.seed is None else config.seed)
    remaining, _ = split_request(dataset, forget_ids)
    return train_from_scratch(type(agent), agent.spec, agent.config, remaining, steps=steps, seed=seed,
                              device=str(device_of(agent)), runtime=getattr(agent, "runtime", RuntimeOptions()))
