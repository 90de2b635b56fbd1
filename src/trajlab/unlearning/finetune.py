"""Fine-tuning baseline: keep training the original agent on the remaining data D_r only.

The forget set's influence fades only as far as further training on other data overwrites it; the paper's
setting gives it 10,000 updates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trajlab.core.protocols import Agent, require
from trajlab.data.dataset import TransitionDataset
from trajlab.training.steps import batch_size_of, check_steps, copy_agent, sampler_for, train_steps
from trajlab.unlearning.base import register_method, split_request, validate_request


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning on D_r (defaults: the paper's setting)."""

    steps: int = 10_000
    """Updates on the remaining data."""
    batch_size: int | None = None
    """Transitions per update (None: the agent's own batch size)."""
    seed: int = 0
    """Seed of the batch sampler."""


@register_method("finetune", FinetuneConfig)
def unlearn(agent: Any, dataset: TransitionDataset, forget_episode_ids: Iterable[int],
            config: FinetuneConfig = FinetuneConfig()) -> Any:
    """A copy of `agent` trained `config.steps` more updates on `dataset` without the forget set."""
    forget_ids = validate_request(agent, dataset, forget_episode_ids)
    require(agent, Agent, needed_by="fine-tuning")
    check_steps(steps=config.steps)
    remaining, _ = split_request(dataset, forget_ids)
    unlearned = copy_agent(agent)
    sampler = sampler_for(unlearned, remaining, config.seed, "finetune")
    train_steps(unlearned, sampler, config.steps, batch_size_of(unlearned, config.batch_size))
    return unlearned
