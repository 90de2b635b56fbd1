"""Behaviour cloning for discrete actions: a categorical policy fitted by maximum likelihood.

    actor:  -log softmax(f(s))[a]   (cross-entropy with the dataset's action)

The discrete counterpart of `bc`, with the same settings (256x256 network, Adam at 3e-4, batch 256,
normalised states). It acts greedily, or samples from the softmax when `deterministic` is False.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from trajlab.algos.base import AGENTS
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.mlp import mlp
from trajlab.nn.training import adam, autocast, step


@dataclass(frozen=True)
class DiscreteBCConfig:
    """Discrete behaviour cloning settings (the same defaults as `bc`)."""

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
class DiscreteBCLosses(LossOutput):
    actor: Tensor
    """Negative log-likelihood of the dataset's action under the policy [B]."""


def categorical_nll(logits: Tensor, actions: Tensor) -> Tensor:
    """Per-sample -log softmax(logits)[a]: [B, A] logits, [B] int64 actions -> [B]."""
    return F.cross_entropy(logits, actions, reduction="none")


def sample_categorical(logits: Tensor) -> Tensor:
    """One action per row drawn from softmax(logits), [B, A] -> [B] int64."""
    return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)


@AGENTS.register("discrete_bc")
class DiscreteBC(OfflineAgent):
    """Maximum-likelihood behaviour cloning of a categorical policy."""

    name = "discrete_bc"
    config_class = DiscreteBCConfig

    def __init__(self, spec: SpaceSpec, config: DiscreteBCConfig = DiscreteBCConfig(), *, device: str = "cpu",
                 seed: int = 0):
        if not spec.discrete:
            raise TrajlabError("discrete_bc needs discrete actions; use bc for continuous ones")
        super().__init__(spec, config, device=device, seed=seed)
        self.actor = mlp(spec.observation_dim, spec.action_dim, config.hidden).to(self.device)
        self.networks = {"actor": self.actor}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.lr)}
        self._actor_loss = torch.compile(self._actor_loss_eager) if config.compile else self._actor_loss_eager

    def _actor_loss_eager(self, observations: Tensor, actions: Tensor) -> Tensor:
        return categorical_nll(self.actor(observations), actions)

    def compute_losses(self, batch: Batch) -> DiscreteBCLosses:
        with autocast(self.device, self.config.bf16):
            batch = self.preprocess(batch)
            return DiscreteBCLosses(actor=self._actor_loss(batch.observations, batch.actions))

    def update(self, batch: Batch) -> dict[str, float]:
        with autocast(self.device, self.config.bf16):
            losses = self.compute_losses(batch)
            loss = self.reduce("actor", losses.actor, batch)
            step(self.optimizers["actor"], loss)
        self.num_updates += 1
        return {"actor_loss": loss.item()}

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        logits = self.actor(observations)
        return logits.argmax(dim=-1) if deterministic else sample_categorical(logits)
