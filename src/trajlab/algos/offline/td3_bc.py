"""TD3+BC (Fujimoto & Gu, 2021): TD3 whose actor loss adds a behaviour-cloning term.

    critic:  sum_i (Q_i(s, a) - y)^2,  y = r + gamma (1 - d) min_i Q'_i(s', clip(pi'(s') + clip(noise)))
    actor:   -lambda Q_1(s, pi(s)) + mean_j (pi(s)_j - a_j)^2,  lambda = alpha / mean_batch |Q_1(s, pi(s))|

States are standardised with the dataset's statistics (as in the paper); rewards are used as they are. The
actor and the target networks move every `policy_freq` critic updates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.masking import MaskedEnsembleFields
from trajlab.algos.offline.base import OfflineAgent
from trajlab.algos.offline.masked import MaskedOfflineMixin
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import EnsembleCritic
from trajlab.nn.masked import MaskedDeterministicPolicy, MaskedEnsembleCritic
from trajlab.nn.policies import DeterministicPolicy
from trajlab.nn.training import PolyakAverager, adam, frozen_copy, step


@dataclass(frozen=True)
class TD3BCConfig:
    """TD3+BC settings (defaults: the paper's)."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    num_critics: int = 2
    """Critics in the ensemble (clipped double Q takes their minimum)."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise (actions in [-1, 1])."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to [-noise_clip, noise_clip]."""
    policy_freq: int = 2
    """The actor and the targets are updated once every this many critic updates."""
    alpha: float = 2.5
    """Weight of the Q term relative to behaviour cloning (lambda = alpha / mean |Q|)."""
    normalize_observations: bool = True
    """Standardise observations with the dataset's mean and std (stored in the checkpoint)."""


@dataclass
class TD3BCLosses(LossOutput):
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    actor: Tensor
    """-lambda * Q_1(s, pi(s)) + behaviour-cloning squared error [B]."""


def td3_bc_lambda(q_values: Tensor, alpha: float, sample_weights: Tensor | None = None) -> Tensor:
    """alpha / mean |Q|, without gradient: makes the Q term's scale independent of the reward scale. With
    per-sample weights the mean is weighted, so a sample of weight 0 does not move lambda."""
    magnitude, per_member = q_values.abs().detach(), q_values.dim() > 1
    # the mean runs over the batch (the last dimension): per-member Q's [K, B] get one lambda per member
    if sample_weights is None:
        return alpha / magnitude.mean(-1, keepdim=per_member)
    return alpha / ((magnitude * sample_weights).sum(-1, keepdim=per_member) / sample_weights.sum())


def td3_bc_actor_loss(q_values: Tensor, policy_actions: Tensor, data_actions: Tensor, alpha: float,
                      sample_weights: Tensor | None = None) -> Tensor:
    """Per-sample TD3+BC actor loss: -lambda * Q + mean over action dims of (pi(s) - a)^2 -> [B]."""
    lam = td3_bc_lambda(q_values, alpha, sample_weights)
    return -lam * q_values + (policy_actions - data_actions).pow(2).mean(-1)


@AGENTS.register("td3_bc")
class TD3BC(OfflineAgent):
    """TD3 with a behaviour-cloning regulariser on the actor."""

    name = "td3_bc"
    config_class = TD3BCConfig

    def __init__(self, spec: SpaceSpec, config: TD3BCConfig = TD3BCConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        if spec.discrete:
            raise TrajlabError("td3_bc needs continuous actions; these actions are discrete")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.actor, self.critic = (network.to(self.device) for network in self._new_networks())
        self.actor_target, self.critic_target = frozen_copy(self.actor), frozen_copy(self.critic)
        self.networks = {"actor": self.actor, "critic": self.critic,
                         "actor_target": self.actor_target, "critic_target": self.critic_target}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.actor_lr),
                           "critic": adam(self.critic.parameters(), config.critic_lr)}
        self._actor_params = list(self.actor.parameters())
        self._averagers = [PolyakAverager(self.actor, self.actor_target),
                           PolyakAverager(self.critic, self.critic_target)]
        self._critic_loss = self.compiled(self._critic_loss_eager)
        self._actor_loss = self.compiled(self._actor_loss_eager)

    def _new_networks(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(actor, critic ensemble); the masked variant (`masked_td3_bc`) builds masked ensembles instead."""
        obs_dim, act_dim, config = self.spec.observation_dim, self.spec.action_dim, self.config
        return (DeterministicPolicy(obs_dim, act_dim, config.actor_hidden),
                EnsembleCritic(config.num_critics, obs_dim, act_dim, config.critic_hidden))

    def _member_mask(self, batch: Batch) -> dict[str, Tensor | None]:
        """Extra keyword arguments of every actor and critic call on `batch`: none for TD3+BC; `masked_td3_bc`
        passes each sample's member mask (turn-over dropout)."""
        return {}

    def _per_sample(self, loss: Tensor, batch: Batch) -> Tensor:
        """A loss as one value per sample [B]: as it is for TD3+BC; `masked_td3_bc` with independent members
        averages its per-member losses [K, B] over each sample's mask."""
        return loss

    def _first_q(self, observations: Tensor, actions: Tensor, members: dict[str, Tensor | None]) -> Tensor:
        """Q_1(s, a) [B] of the actor loss (Q_2 is not needed, so only the first critic is evaluated)."""
        return self.critic(observations, actions, members=slice(0, 1))[0]

    # --- losses -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) min_i Q'_i(s', smoothed pi'(s')) for a preprocessed batch -> [B]."""
        config, members = self.config, self._member_mask(batch)
        noise = (torch.randn_like(batch.actions) * config.policy_noise).clamp(-config.noise_clip, config.noise_clip)
        next_actions = (self.actor_target(batch.next_observations, **members) + noise).clamp(-1.0, 1.0)
        next_q = self.critic_target(batch.next_observations, next_actions, **members).min(0).values
        return batch.rewards + config.gamma * (1.0 - batch.terminals) * next_q

    def _critic_loss_eager(self, batch: Batch) -> Tensor:
        target = self.td_target(batch)
        squared = (self.critic(batch.observations, batch.actions, **self._member_mask(batch)) - target).pow(2)
        return self._per_sample(squared.sum(0), batch)

    def _actor_loss_eager(self, batch: Batch) -> Tensor:
        members = self._member_mask(batch)
        policy_actions = self.actor(batch.observations, **members)
        q_first = self._first_q(batch.observations, policy_actions, members)
        loss = td3_bc_actor_loss(q_first, policy_actions, batch.actions, self.config.alpha, batch.weights)
        return self._per_sample(loss, batch)

    def compute_losses(self, batch: Batch) -> TD3BCLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            return TD3BCLosses(critic=self._critic_loss(batch), actor=self._actor_loss(batch))

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            prepared = self.preprocess(batch)
            critic_loss = self.reduce("critic", self._critic_loss(prepared), batch)
            step(self.optimizers["critic"], critic_loss)
            metrics = {"critic_loss": critic_loss.detach()}
            if self.num_updates % self.config.policy_freq == 0:  # updates 1, 1 + freq, ... (as d3rlpy)
                actor_loss = self.reduce("actor", self._actor_loss(prepared), batch)
                # gradients for the actor only: the critic's weights are not differentiated through
                step(self.optimizers["actor"], actor_loss, inputs=self._actor_params)
                for averager in self._averagers:
                    averager.update(self.config.tau)
                metrics["actor_loss"] = actor_loss.detach()
            self.num_updates += 1
            return dict(zip(metrics, torch.stack(list(metrics.values())).tolist()))

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions (TrajAuditor's value estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        return self.actor(observations)


@dataclass(frozen=True)
class MaskedTD3BCConfig(MaskedEnsembleFields, TD3BCConfig):
    """TD3+BC with turn-over dropout: the actor and both critics are masked ensembles over episode groups."""



@AGENTS.register("masked_td3_bc")
class MaskedTD3BC(MaskedOfflineMixin, TD3BC):
    """TD3+BC whose actor and critics are masked ensembles; each sample trains its episode group's members."""

    name = "masked_td3_bc"
    config_class = MaskedTD3BCConfig

    def __init__(self, spec: SpaceSpec, config: MaskedTD3BCConfig = MaskedTD3BCConfig(), *, device: str = "cpu",
                 seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()):
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self._init_masks(seed)

    def _new_networks(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        obs_dim, act_dim, config = self.spec.observation_dim, self.spec.action_dim, self.config
        return (MaskedDeterministicPolicy(config.ensemble_size, obs_dim, act_dim, config.actor_hidden,
                                          layer_norm=config.layer_norm),
                MaskedEnsembleCritic(config.num_critics, config.ensemble_size, obs_dim, act_dim,
                                     config.critic_hidden, layer_norm=config.layer_norm))

    def _first_q(self, observations: Tensor, actions: Tensor, members: dict[str, Tensor | None]) -> Tensor:
        return self.critic(observations, actions, **members)[0]
