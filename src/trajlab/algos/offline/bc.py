"""Behaviour cloning: regress the dataset's actions from its (normalised) states.

The baseline every offline RL paper reports; the settings follow the BC baseline of TD3+BC (Fujimoto & Gu,
2021): a deterministic 256x256 policy, mean squared error, Adam at 3e-4, batch 256, normalised states.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trajlab.algos.base import AGENTS
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.policies import DeterministicPolicy
from trajlab.nn.training import adam, autocast, step


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning settings (defaults: the BC baseline of the TD3+BC paper)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy."""
    lr: float = 3e-4
    """Adam learning rate of the policy."""
    batch_size: int = 256
    """Transitions per update."""
    normalize_observations: bool = True
    """Standardise observations with the dataset's mean and std (stored in the checkpoint)."""
    compile: bool = False
    """Run the loss through torch.compile (first update compiles for 10-20 s; pays off on long runs only)."""
    bf16: bool = False
    """bfloat16 autocast of the matmuls in updates: faster on CPUs with AVX512-BF16/AMX and on GPUs, but network
    outputs keep only ~3 significant digits (off by default; the papers train in float32)."""


@dataclass
class BCLosses(LossOutput):
    actor: Tensor
    """Squared error between the policy's action and the dataset's, averaged over action dimensions [B]."""


def bc_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Per-sample mean squared error over action dimensions: [B, act] x [B, act] -> [B]."""
    return (predicted - target).pow(2).mean(-1)


@AGENTS.register("bc")
class BC(OfflineAgent):
    """Deterministic behaviour cloning."""

    name = "bc"
    config_class = BCConfig

    def __init__(self, spec: SpaceSpec, config: BCConfig = BCConfig(), *, device: str = "cpu", seed: int = 0):
        if spec.discrete:
            raise TrajlabError("bc needs continuous actions; these actions are discrete")
        super().__init__(spec, config, device=device, seed=seed)
        self.actor = DeterministicPolicy(spec.observation_dim, spec.action_dim, config.hidden).to(self.device)
        self.networks = {"actor": self.actor}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.lr)}
        self._actor_loss = torch.compile(self._actor_loss_eager) if config.compile else self._actor_loss_eager

    def _actor_loss_eager(self, observations: Tensor, actions: Tensor) -> Tensor:
        return bc_loss(self.actor(observations), actions)

    def compute_losses(self, batch: Batch) -> BCLosses:
        with autocast(self.device, self.config.bf16):
            batch = self.preprocess(batch)
            return BCLosses(actor=self._actor_loss(batch.observations, batch.actions))

    def update(self, batch: Batch) -> dict[str, float]:
        with autocast(self.device, self.config.bf16):
            losses = self.compute_losses(batch)
            loss = self.reduce("actor", losses.actor, batch)
            step(self.optimizers["actor"], loss)
            self.num_updates += 1
            return {"actor_loss": loss.item()}

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        return self.actor(observations)
