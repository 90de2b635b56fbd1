"""Behaviour cloning: regress the dataset's actions from its (normalised) states.

The baseline every offline RL paper reports; the settings follow the BC baseline of TD3+BC (Fujimoto & Gu,
2021): a deterministic 256x256 policy, mean squared error, Adam at 3e-4, batch 256, normalised states.

`discrete_bc` is the same for discrete actions: a categorical policy fitted by maximum likelihood,

    actor:  -log softmax(f(s))[a]   (cross-entropy with the dataset's action)

with the same settings. It acts greedily, or samples from the softmax when `deterministic` is False.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.offline.base import OfflineAgent, check_action_space
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.policies import CategoricalPolicy, DeterministicPolicy, mean_squared_error
from trajlab.nn.training import adam, step


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


DiscreteBCConfig = BCConfig
"""Discrete behaviour cloning has the same settings and defaults as `bc`."""


@dataclass
class BCLosses(LossOutput):
    actor: Tensor
    """Squared error between the policy's action and the dataset's, averaged over action dimensions, or (discrete)
    the negative log-likelihood of the dataset's action [B]."""


bc_loss = mean_squared_error
"""Per-sample loss of the deterministic policy: [B, act] x [B, act] -> [B]."""


@AGENTS.register("bc")
class BC(OfflineAgent):
    """Deterministic behaviour cloning."""

    name = "bc"
    config_class = BCConfig
    discrete = False
    """Action space served: a deterministic policy, or (discrete_bc) a categorical one."""

    def __init__(self, spec: SpaceSpec, config: BCConfig = BCConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        check_action_space(self.name, spec, discrete=self.discrete, other="bc")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        policy_class = CategoricalPolicy if self.discrete else DeterministicPolicy
        self.actor = policy_class(spec.observation_dim, spec.action_dim, config.hidden).to(self.device)
        self.networks = {"actor": self.actor}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.lr)}
        self._actor_loss = self.compiled(self.actor.imitation_loss)

    def compute_losses(self, batch: Batch) -> BCLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            return BCLosses(actor=self._actor_loss(batch.observations, batch.actions))

    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            loss = self.reduce("actor", self.compute_losses(batch).actor, batch)
            step(self.optimizers["actor"], loss)
        self.num_updates += 1
        return {"actor_loss": loss.item()}

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        return self.actor.act(observations, deterministic)


@AGENTS.register("discrete_bc")
class DiscreteBC(BC):
    """Maximum-likelihood behaviour cloning of a categorical policy."""

    name = "discrete_bc"
    discrete = True
