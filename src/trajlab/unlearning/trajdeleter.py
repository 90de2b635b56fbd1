"""TrajDeleter (Gong et al., NDSS 2025): make an offline agent forget trajectories in a fraction of retraining.

Phase 1, forgetting: blocks of ordinary updates on the remaining data D_r alternate with blocks of updates on
the forget set D_u whose rewards are negated, where the policy's loss counts `balance` (lambda) times. The
negated rewards drive the agent's values on the forget states down; the D_r blocks hold them in place
everywhere else. The policy's loss is the agent's `actor` term; an agent without one (discrete CQL, discrete
BCQ) acts greedily in its Q-values, so its policy learns through its TD term `td`, and lambda scales that
(see `balanced_term`).

Phase 2, convergence training: updates on D_r in which the critic's TD target is pulled towards the frozen
original agent's target with weight w. The paper adds w * (Q - y_original)^2 to the critic loss; that sum has
the same minimiser as one squared error against (y + w * y_original) / (1 + w), which is what the agent's own
critic loss sees here (its gradient is 1 + w times smaller, a constant factor that Adam normalises away).

Backdoors (`forget_actions="neighbours"`, not in the paper). The policy losses of offline agents imitate the
data's actions (TD3+BC's behaviour-cloning term, IQL's and AWAC's advantage-weighted likelihood). On the D_u
blocks that imitation keeps teaching the very actions to be forgotten, so a backdoor planted in them (a trigger
state paired with a bad action) survives TrajDeleter whatever the negated rewards do to the values. Retraining
removes it because the policy at a forgotten state is then whatever the retained data teaches near it. The
variant splits phase 1's D_u blocks in two kinds, taken in turn:
- value blocks: D_u with negated rewards as in the paper, with the policy's loss switched off (scale 0), so the
  values of the forgotten actions go down but the policy no longer imitates them. An agent greedy in its
  Q-values (no actor term) keeps lambda on its TD term: lowering those values is how its policy moves;
- neighbour blocks: every D_u transition with the action and reward of the nearest retained transition
  (observations standardised by D_r's spread), at the forgotten state: what retraining's policy learns there.

Both phases run the agent's own `update()`; only the data, the rewards, a loss scale and the TD target change.
What that asks of the agent beyond `Agent` is `required_capabilities(config)`: LossScalable for phase 1 when
it has a D_u block, TDTargetProvider for phase 2 when it has steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from trajlab.algos.base import scaled_losses
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Agent, Batch, LossScalable, TDTargetProvider, loss_term_names, require
from trajlab.data.dataset import TransitionDataset
from trajlab.training.steps import batch_size_of, check_steps, copy_agent, sampler_for, train_steps
from trajlab.unlearning.base import register_method, split_request, validate_request


@dataclass(frozen=True)
class TrajDeleterConfig:
    """TrajDeleter's settings (defaults: the paper's)."""

    forget_steps: int = 8_000
    """Updates in phase 1 (forgetting), D_r and D_u blocks together."""
    convergence_steps: int = 2_000
    """Updates in phase 2 (convergence training on D_r)."""
    block_length: int = 1_000
    """Updates per block in phase 1; blocks alternate D_r, D_u, D_r, ..."""
    balance: float = 1.0
    """lambda: weight of the policy's loss on the forget set's (negated-reward) batches: the `actor` term, or
    for an agent without one (discrete CQL, discrete BCQ: greedy in Q) its TD term `td`."""
    reference_weight: float = 0.1
    """w: pull of the frozen original agent's TD target on the critic in phase 2 (0: plain training)."""
    batch_size: int | None = None
    """Transitions per update (None: the agent's own batch size)."""
    forget_actions: str = "dataset"
    """The actions of the forget set's batches in phase 1: dataset (the paper: D_u's own, which a policy loss that
    imitates the data keeps copying) or neighbours (each replaced by the action of the nearest retained state:
    what retraining's policy learns there; removes backdoors, see the module docs)."""
    seed: int = 0
    """Seed of the batch samplers."""


FORGET_ACTIONS = ("dataset", "neighbours")


@contextmanager
def blended_td_target(agent: Any, reference: Any, weight: float) -> Iterator[Any]:
    """Within the block, `agent.td_target(batch)` returns (own + weight * reference's) / (1 + weight).

    Only this instance's `td_target` is wrapped (the class is untouched); the reference agent must keep the
    agent's preprocessing (observation normaliser, reward scale), which a copy of the original agent does.
    """
    for who in (agent, reference):
        require(who, TDTargetProvider, needed_by="TrajDeleter's convergence phase")
    own_target = agent.td_target
    had_instance_attribute = "td_target" in vars(agent)

    def blended(batch: Batch) -> Tensor:
        return (own_target(batch) + weight * reference.td_target(batch)) / (1.0 + weight)

    agent.td_target = blended
    try:
        yield agent
    finally:
        if had_instance_attribute:
            agent.td_target = own_target
        else:
            del agent.td_target


def negated_rewards(forget: TransitionDataset) -> TransitionDataset:
    """D_u with every reward negated (in dataset units, before the agent's own reward scaling)."""
    return forget.with_rewards(-forget.rewards)


def neighbour_transitions(forget: TransitionDataset, remaining: TransitionDataset) -> TransitionDataset:
    """D_u with each action and reward replaced by those of the nearest D_r state (Euclidean distance between
    observations divided by D_r's per-dimension standard deviation, so no dimension dominates by its units)."""
    from scipy.spatial import cKDTree

    scale = np.maximum(remaining.observations.std(axis=0), 1e-6)
    _, nearest = cKDTree(remaining.observations / scale).query(forget.observations / scale, k=1)
    return forget.with_actions(remaining.actions[nearest]).with_rewards(remaining.rewards[nearest])


def forget_blocks(agent: Any, forget: TransitionDataset, remaining: TransitionDataset,
                  config: TrajDeleterConfig) -> list[tuple[TransitionDataset, dict[str, float]]]:
    """Phase 1's kinds of D_u block, taken in turn: (data, loss scales) each (see the module docs)."""
    term = balanced_term(agent)
    if config.forget_actions == "dataset":
        return [(negated_rewards(forget), {term: config.balance})]
    values = (negated_rewards(forget), {term: 0.0 if term == "actor" else config.balance})
    return [values, (neighbour_transitions(forget, remaining), {})]


def forgetting_phase(agent: Any, remaining: Any, forget_blocks: list[tuple[Any, dict[str, float]]],
                     config: TrajDeleterConfig, batch_size: int) -> None:
    """Phase 1: alternate `block_length` updates on D_r with `block_length` on a D_u block (the kinds of D_u
    block in turn: one kind, negated-reward D_u, in the paper)."""
    done, block = 0, 0
    while done < config.forget_steps:
        steps = min(config.block_length, config.forget_steps - done)
        if block % 2 == 0:
            train_steps(agent, remaining, steps, batch_size)
        else:
            sampler, scales = forget_blocks[(block // 2) % len(forget_blocks)]
            with scaled_losses(agent, **scales):
                train_steps(agent, sampler, steps, batch_size)
        done, block = done + steps, block + 1


def convergence_phase(agent: Any, reference: Any, remaining: Any, config: TrajDeleterConfig,
                      batch_size: int) -> None:
    """Phase 2: updates on D_r with the critic target pulled towards the frozen original's."""
    with blended_td_target(agent, reference, config.reference_weight):
        train_steps(agent, remaining, config.convergence_steps, batch_size)


@register_method("trajdeleter", TrajDeleterConfig)
def unlearn(agent: Any, dataset: TransitionDataset, forget_episode_ids: Iterable[int],
            config: TrajDeleterConfig = TrajDeleterConfig()) -> Any:
    """A copy of `agent` that has forgotten the given episodes; `agent` itself is the frozen reference."""
    forget_ids = validate_request(agent, dataset, forget_episode_ids)
    check_config(agent, config)
    remaining, forget = split_request(dataset, forget_ids)
    unlearned = copy_agent(agent)
    batch_size = batch_size_of(unlearned, config.batch_size)
    remaining_sampler = sampler_for(unlearned, remaining, config.seed, "trajdeleter", "remaining")
    # the first kind's sampler keeps the paper's seed name, so the paper's method is unchanged by the variant
    blocks = [(sampler_for(unlearned, data, config.seed, "trajdeleter", "forget", *([kind] if kind else [])), scales)
              for kind, (data, scales) in enumerate(forget_blocks(unlearned, forget, remaining, config))]
    forgetting_phase(unlearned, remaining_sampler, blocks, config, batch_size)
    convergence_phase(unlearned, agent, remaining_sampler, config, batch_size)
    return unlearned


BALANCED_TERMS = ("actor", "td")
"""The loss terms lambda may scale, in order of preference: the policy's own loss, else the TD loss of an agent
whose policy is greedy in its Q-values (its only way to move the policy)."""


def balanced_term(agent: Any) -> str:
    """The loss term lambda scales on the forget set's batches: the first of BALANCED_TERMS the agent has."""
    terms = loss_term_names(agent)
    for name in BALANCED_TERMS:
        if name in terms:
            return name
    raise TrajlabError(f"TrajDeleter weights the policy's loss on the forget set by balance (lambda), but "
                       f"{type(agent).__name__} has neither an actor nor a td loss term (its terms: "
                       f"{', '.join(terms) or 'none'})")


def required_capabilities(config: TrajDeleterConfig) -> tuple[type, ...]:
    """What TrajDeleter needs of an agent with these settings."""
    has_forget_block = config.forget_steps > config.block_length
    return (Agent, *((LossScalable,) if has_forget_block else ()),
            *((TDTargetProvider,) if config.convergence_steps else ()))


def check_config(agent: Any, config: TrajDeleterConfig) -> None:
    """Settings and agent fit TrajDeleter (raises TrajlabError before any training)."""
    check_steps(forget_steps=config.forget_steps, convergence_steps=config.convergence_steps)
    if config.block_length <= 0:
        raise TrajlabError(f"block_length must be positive, got {config.block_length}")
    if config.balance < 0 or config.reference_weight < 0:
        raise TrajlabError("balance and reference_weight must be non-negative")
    if config.forget_actions not in FORGET_ACTIONS:
        raise TrajlabError(f"forget_actions must be one of {', '.join(FORGET_ACTIONS)}, got {config.forget_actions!r}")
    needed = required_capabilities(config)
    require(agent, *needed, needed_by="TrajDeleter")
    if LossScalable in needed:
        balanced_term(agent)  # an agent with no term lambda could scale fails now, not after a D_r block
