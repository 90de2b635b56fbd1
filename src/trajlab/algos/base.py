"""`AgentBase`: the shared half of every built-in agent (state dicts, devices, acting, checkpoints).

Subclasses build their networks into `self.networks` and optimisers into `self.optimizers`, and implement
`compute_losses`, `update` and `_policy_action`. Save/load then works without further code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import trajlab
from trajlab.core.checkpoint import load_checkpoint, save_checkpoint
from trajlab.core.config import from_dict, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.registry import Registry
from trajlab.core.seeding import seed_everything
from trajlab.core.spec import SpaceSpec

AGENTS: Registry[type[AgentBase]] = Registry("algorithm")


class AgentBase(ABC):
    """Base of the built-in agents; a user's agent need only follow `trajlab.core.Agent`."""

    name: ClassVar[str] = "agent"
    config_class: ClassVar[type] = object

    def __init__(self, spec: SpaceSpec, config: Any, *, device: str = "cpu", seed: int = 0) -> None:
        self.spec = spec
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        self.num_updates = 0
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.loss_scales: dict[str, float] = {}
        seed_everything(seed)

    # --- the Agent protocol -------------------------------------------------------------------------
    @abstractmethod
    def compute_losses(self, batch: Batch) -> LossOutput:
        """Per-sample losses on a batch (no optimiser steps)."""

    @abstractmethod
    def update(self, batch: Batch) -> dict[str, float]:
        """One training step; the only place that steps optimisers and target networks."""

    @abstractmethod
    def _policy_action(self, observations: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions for a [N, obs_dim] tensor of observations."""

    @torch.no_grad()
    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        obs = torch.as_tensor(np.array(observations, dtype=np.float32), device=self.device)  # copy: may be read-only
        single = obs.ndim == 1
        actions = self._policy_action(obs.unsqueeze(0) if single else obs, deterministic).cpu().numpy()
        return actions[0] if single else actions

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.networks)

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {name: module.state_dict() for name, module in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "num_updates": self.num_updates,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.networks) - set(state.get("networks", {}))
        if missing:
            raise TrajlabError(f"checkpoint lacks network(s) {', '.join(sorted(missing))} for {self.name}")
        for name, module in self.networks.items():
            module.load_state_dict(state["networks"][name])
        for name, optimizer in self.optimizers.items():
            if name in state.get("optimizers", {}):
                optimizer.load_state_dict(state["optimizers"][name])
        self.num_updates = int(state.get("num_updates", 0))
        self.load_extra_state(state.get("extra") or {})

    def extra_state(self) -> dict[str, Any]:
        """Non-network state to checkpoint (for example the entropy temperature); override as needed."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook, empty by default)
        """Restore what `extra_state()` returned."""

    def reduce(self, name: str, per_sample: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The batch loss of one per-sample term: weighted by `batch.weights`, scaled by `loss_scales[name]`.

        `update()` reduces every term through here, so unlearning and influence methods can reweight samples
        (Batch.weights) or whole terms (`scaled_losses`) without touching the algorithm.
        """
        loss = batch.weighted_mean(per_sample)
        scale = self.loss_scales.get(name)
        return loss if scale is None else loss * scale

    # --- conveniences -------------------------------------------------------------------------------
    def train_mode(self, training: bool = True) -> None:
        for module in self.networks.values():
            module.train(training)

    def parameters(self) -> list[nn.Parameter]:
        return [p for module in self.networks.values() for p in module.parameters()]


@contextmanager
def scaled_losses(agent: AgentBase, **scales: float) -> Iterator[AgentBase]:
    """Within the block, `agent.update` multiplies the named loss terms by the given factors."""
    previous = dict(agent.loss_scales)
    agent.loss_scales.update(scales)
    try:
        yield agent
    finally:
        agent.loss_scales = previous


def save_agent(path: str | Path, agent: AgentBase, metadata: dict[str, Any] | None = None, *,
               run_state: dict[str, Any] | None = None) -> Path:
    """Checkpoint an agent with what is needed to rebuild it: algorithm name, config, spaces, version.

    `run_state` (tensors/scalars, e.g. a sampler's generator state) is stored in the same file under
    "run_state", so a resumable checkpoint is one atomic write; `load_agent` ignores it.
    """
    header = {
        "algo": agent.name,
        "config": to_dict(agent.config),
        "spec": agent.spec.to_dict(),
        "seed": agent.seed,
        "trajlab_version": trajlab.__version__,
        **(metadata or {}),
    }
    state = agent.state_dict()
    if run_state is not None:
        state["run_state"] = run_state
    return save_checkpoint(path, state, header)


def load_agent(path: str | Path, device: str = "cpu") -> AgentBase:
    """Rebuild an agent from a checkpoint written by `save_agent`."""
    state, metadata = load_checkpoint(path, device=device)
    if "algo" not in metadata or "spec" not in metadata:
        raise TrajlabError(f"{path}: checkpoint has no agent metadata (algo, spec)")
    agent_class = AGENTS.get(metadata["algo"])
    config = from_dict(agent_class.config_class, metadata.get("config", {}), where=f"{path} config")
    agent = agent_class(SpaceSpec.from_dict(metadata["spec"]), config, device=device, seed=metadata.get("seed", 0))
    agent.load_state_dict(state)
    return agent
