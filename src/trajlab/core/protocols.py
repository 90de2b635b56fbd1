"""The contracts every agent keeps: a Batch in, per-sample losses out, and `update()` owning the optimisers.

Unlearning, influence and differential privacy all reuse an agent's `compute_losses(batch)`; nothing copies an
algorithm to change its loss. A user's own agent that follows `Agent` works with every trajlab method that needs
no more than that, and `trajlab.testing.check_agent` verifies that it does.

Some methods need more of an agent. Each extra is a small capability protocol here, which a method names with
`require(agent, Capability, needed_by=...)` before it starts (a one-line TrajlabError names what is missing),
and `check_agent` tests every capability an agent has:

- `ValueEstimator`: `q_value(observations, actions)`, Q(s, a) [N]. TrajAuditor.
- `TDTargetProvider`: `td_target(batch)`, the critic's TD target [B]. TrajDeleter's convergence phase.
- `LossScalable`: `loss_scales`, a factor per loss term that `update()` applies, with every term also weighted
  by `Batch.weights` (a weight of 0 is the same as leaving the sample out); the term names are the fields of
  the LossOutput subclass that `compute_losses` is annotated to return (`loss_term_names`). TrajDeleter's
  forgetting phase, through `trajlab.algos.base.scaled_losses`.
- `Rebuildable`: `spec`, `config` and `seed`, from which `type(agent)(spec, config, device=..., seed=...)`
  builds the same algorithm untrained. Retraining.
- `Preparable`: `prepare(dataset)`, taking data statistics before the first update. Retraining (and every
  trajlab training run) calls it on the training data.
- `Counted`: `num_updates`, the `update()` calls so far. Retraining without a step count repeats as many.
- `OnDevice`: `device`, where its tensors live; methods put batches there (an agent without one is on the CPU).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from trajlab.core.errors import TrajlabError
from trajlab.core.spec import SpaceSpec


@dataclass(frozen=True)
class Batch:
    """A minibatch of transitions as tensors, carrying the ids of the transitions it holds.

    `weights` is an optional per-sample weight (shape [B]) that `update()` applies to every per-sample loss (a
    weight of 0 counts as leaving the sample out; see LossScalable); unlearning and influence methods use it to
    up- or down-weight chosen experiences without new code paths.

    `masks` is an optional member mask per sample ([B, K] bool) of turn-over dropout (PIToD): an agent with
    masked ensembles computes each sample's loss and TD target with the members its mask selects; None means all.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    next_observations: Tensor
    terminals: Tensor
    transition_ids: Tensor
    episode_ids: Tensor
    timeouts: Tensor | None = None
    costs: Tensor | None = None
    weights: Tensor | None = None
    masks: Tensor | None = None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def to(self, device: str | torch.device) -> Batch:
        moved = {f.name: _move(getattr(self, f.name), device) for f in fields(self)}
        return Batch(**moved)

    def replace(self, **changes: Any) -> Batch:
        """A copy with some fields changed (for example negated rewards or new weights)."""
        return dataclasses.replace(self, **changes)

    def index(self, selection: Tensor) -> Batch:
        """The sub-batch at the given positions."""
        picked = {f.name: _take(getattr(self, f.name), selection) for f in fields(self)}
        return Batch(**picked)

    def weighted_mean(self, per_sample: Tensor) -> Tensor:
        """Mean of a per-sample loss, using `weights` when present."""
        if self.weights is None:
            return per_sample.mean()
        return (per_sample * self.weights).sum() / self.weights.sum().clamp_min(1e-12)


def _move(value: Tensor | None, device: str | torch.device) -> Tensor | None:
    return None if value is None else value.to(device, non_blocking=True)


def _take(value: Tensor | None, selection: Tensor) -> Tensor | None:
    return None if value is None else value[selection]


@dataclass
class LossOutput:
    """Per-sample loss terms (each a tensor of shape [B]); algorithms subclass this with their own fields.

    Fields that are not per-sample tensors (diagnostics such as Q-values) may be added as `Tensor | None`
    with a name that starts with `info_`; `terms()` skips them.
    """

    def terms(self) -> dict[str, Tensor]:
        """The per-sample loss terms, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.name.startswith("info_") and isinstance(getattr(self, f.name), Tensor)
        }

    def __iter__(self) -> Iterator[tuple[str, Tensor]]:
        return iter(self.terms().items())

    def means(self) -> dict[str, float]:
        return {name: float(value.detach().mean()) for name, value in self.terms().items()}


@runtime_checkable
class Agent(Protocol):
    """What every trajlab method needs of an agent."""

    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations ([N, obs_dim] -> [N, act_dim], or [N] for discrete)."""

    def compute_losses(self, batch: Batch) -> LossOutput:
        """Per-sample losses on a batch, without touching optimisers or target networks."""

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on a batch; the only method that steps optimisers and moves target networks."""

    def modules(self) -> dict[str, nn.Module]:
        """The trainable and target networks, by name."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimiser states, counters (nested dicts of tensors/scalars)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned."""


# --- capabilities: what some methods need beyond `Agent` ----------------------------------------------------


@runtime_checkable
class ValueEstimator(Protocol):
    """Has a critic that values given actions."""

    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Q(s, a) [N] for raw observations [N, obs_dim] and actions as `act` emits them."""


@runtime_checkable
class TDTargetProvider(Protocol):
    """Learns its critic from a TD target that methods may read and replace on the instance."""

    def td_target(self, batch: Batch) -> Tensor:
        """The critic's regression target [B] for a batch as `update()` passes it (no gradient)."""


@runtime_checkable
class LossScalable(Protocol):
    """Reduces every per-sample loss term through `Batch.weights` and a per-term factor in `loss_scales`.

    `update()` multiplies term `name`'s batch loss by `loss_scales[name]` when present, and averages each term
    with the batch's weights, so that a weight of 0 gives the same update as leaving the sample out. The term
    names are the fields of the LossOutput subclass `compute_losses` is annotated to return.
    """

    loss_scales: dict[str, float]

    def compute_losses(self, batch: Batch) -> LossOutput:
        """Per-sample losses on a batch, without touching optimisers or target networks."""


@runtime_checkable
class Rebuildable(Protocol):
    """Can be built again, untrained: `type(agent)(spec, config, device=..., seed=...)`."""

    spec: SpaceSpec
    config: Any
    seed: int


@runtime_checkable
class Preparable(Protocol):
    """Takes statistics of its training data (normalisers, reward scales) before the first update."""

    def prepare(self, dataset: Any) -> None:
        """Fit the data statistics on `dataset`."""


@runtime_checkable
class Counted(Protocol):
    """Counts its updates: `num_updates` is the number of `update()` calls so far, kept in its state dict."""

    num_updates: int


@runtime_checkable
class OnDevice(Protocol):
    """Keeps its tensors on one torch device, where methods put the batches they make."""

    device: torch.device | str


CAPABILITIES: dict[type, str] = {
    Agent: "act, compute_losses, update, modules, state_dict and load_state_dict",
    ValueEstimator: "q_value(observations, actions)",
    TDTargetProvider: "td_target(batch)",
    LossScalable: "loss_scales applied per loss term by update()",
    Rebuildable: "spec, config and seed to build it again",
    Preparable: "prepare(dataset)",
    Counted: "num_updates",
    OnDevice: "device",
}
"""Every capability protocol, with what an agent needs to have it (in error messages)."""


def capabilities_of(agent: Any) -> list[type]:
    """The capabilities `agent` has, in the order of CAPABILITIES."""
    return [capability for capability in CAPABILITIES if isinstance(agent, capability)]


def require(agent: Any, *capabilities: type, needed_by: str) -> None:
    """Raise TrajlabError naming the first of `capabilities` that `agent` lacks (and what it lacks of it)."""
    for capability in capabilities:
        if not isinstance(agent, capability):
            missing = ", ".join(name for name in _members(capability) if not hasattr(agent, name))
            raise TrajlabError(f"{needed_by} needs an agent with {CAPABILITIES[capability]} (capability "
                               f"{capability.__name__}); {type(agent).__name__} lacks {missing}")


def _members(capability: type) -> list[str]:
    """The attributes and methods a capability protocol declares."""
    declared = [name for name, value in vars(capability).items() if callable(value) and not name.startswith("_")]
    return [*vars(capability).get("__annotations__", {}), *declared]


def loss_term_names(agent: Any) -> tuple[str, ...]:
    """The loss terms of `agent`: the fields of the LossOutput subclass its `compute_losses` is annotated to
    return (without `info_` diagnostics). Empty when the annotation names no such class."""
    try:
        output = typing.get_type_hints(type(agent).compute_losses).get("return")
    except (AttributeError, NameError, TypeError):  # no compute_losses, or an annotation that does not resolve
        return ()
    if not (isinstance(output, type) and issubclass(output, LossOutput)):
        return ()
    return tuple(f.name for f in fields(output) if not f.name.startswith("info_"))


def device_of(agent: Any) -> torch.device:
    """Where `agent` keeps its tensors: its `device` (capability OnDevice), else the CPU."""
    return torch.device(agent.device) if isinstance(agent, OnDevice) else torch.device("cpu")


def updates_of(agent: Any) -> int:
    """How many updates `agent` has made: its `num_updates` (capability Counted), else 0."""
    return int(agent.num_updates) if isinstance(agent, Counted) else 0
