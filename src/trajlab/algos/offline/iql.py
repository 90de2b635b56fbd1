"""Implicit Q-Learning (Kostrikov, Nair & Levine, 2022): never query Q on actions outside the dataset.

    value:   L_tau(min_i Q'_i(s, a) - V(s)),  L_tau(u) = |tau - 1(u < 0)| u^2  (expectile regression)
    critic:  sum_i (Q_i(s, a) - (r + gamma (1 - d) V(s')))^2
    actor:   -min(exp(beta (min_i Q'_i(s, a) - V(s))), max_weight) log pi(a | s)   (advantage-weighted regression)

As in the paper's code, one update steps the value function first and the actor and critic then use the new
V; the actor's learning rate follows a cosine decay; locomotion rewards are scaled by
1000 / (max episode return - min episode return) of the dataset (stored in the checkpoint).

`discrete_iql` is the same algorithm for discrete actions: a categorical policy pi = softmax(f(s)) and critics
that output Q(s, ·) for every action, of which Q is only ever read at dataset actions; by default its actor's
learning rate is constant and its rewards are not scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.masking import MaskedEnsembleFields
from trajlab.algos.offline.base import OfflineAgent, check_action_space, returns_range_scale
from trajlab.algos.offline.masked import MaskedOfflineMixin
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import DiscreteEnsembleCritic, EnsembleCritic
from trajlab.nn.masked import MaskedEnsembleCritic, MaskedEnsembleMLP, MaskedGaussianPolicy
from trajlab.nn.mlp import mlp
from trajlab.nn.policies import CategoricalPolicy, GaussianPolicy
from trajlab.nn.training import PolyakAverager, adam, frozen_copy, step


@dataclass(frozen=True)
class IQLConfig:
    """IQL settings (defaults: the paper's MuJoCo locomotion settings)."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic and of the value function."""
    actor_lr: float = 3e-4
    """Initial Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    value_lr: float = 3e-4
    """Adam learning rate of the value function."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    num_critics: int = 2
    """Critics in the ensemble (their minimum is used)."""
    expectile: float = 0.7
    """Expectile of the value regression (0.5 = mean; towards 1 = max over dataset actions)."""
    beta: float = 3.0
    """Inverse temperature of the advantage weights exp(beta * A)."""
    max_weight: float = 100.0
    """Advantage weights are clipped to this value."""
    actor_lr_decay_steps: int = 1_000_000
    """Cosine decay of the actor learning rate to 0 over this many updates (0: constant rate)."""
    scale_rewards: bool = True
    """Scale rewards by 1000 / (max - min episode return) of the dataset (the paper's locomotion setting)."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's statistics (the paper does not)."""


@dataclass(frozen=True)
class DiscreteIQLConfig(IQLConfig):
    """Discrete IQL settings: IQL's, with a constant actor learning rate and unscaled rewards."""

    actor_lr_decay_steps: int = 0
    """Cosine decay of the actor learning rate to 0 over this many updates (0: constant rate)."""
    scale_rewards: bool = False
    """Scale rewards by 1000 / (max - min episode return) of the dataset (IQL's locomotion setting)."""


@dataclass
class IQLLosses(LossOutput):
    value: Tensor
    """Expectile loss of V(s) against min_i Q'_i(s, a) [B]."""
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    actor: Tensor
    """Advantage-weighted negative log-likelihood of the dataset action [B]."""


def expectile_loss(difference: Tensor, expectile: float) -> Tensor:
    """|expectile - 1(u < 0)| * u^2 for u = target - prediction, per sample."""
    weight = torch.where(difference > 0, expectile, 1.0 - expectile)
    return weight * difference.pow(2)


def advantage_weights(advantages: Tensor, beta: float, max_weight: float) -> Tensor:
    """min(exp(beta * A), max_weight), without gradient."""
    return torch.exp(beta * advantages.detach()).clamp(max=max_weight)


def cosine_lr(initial: float, step_index: int, total_steps: int) -> float:
    """initial * (1 + cos(pi * t / T)) / 2, held at 0 after T; constant when T is 0."""
    if total_steps <= 0:
        return initial
    progress = min(step_index, total_steps) / total_steps
    return initial * 0.5 * (1.0 + math.cos(math.pi * progress))


@AGENTS.register("iql")
class IQL(OfflineAgent):
    """Expectile value learning plus advantage-weighted policy extraction."""

    name = "iql"
    config_class = IQLConfig
    discrete = False
    """Action space served: a Gaussian policy and Q(s, a) critics, or (discrete_iql) categorical and Q(s, ·)."""

    def __init__(self, spec: SpaceSpec, config: IQLConfig | None = None, *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        config = config or self.config_class()
        check_action_space(self.name, spec, discrete=self.discrete, other="iql")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.actor, self.critic, self.value = (m.to(self.device) for m in self._new_networks())
        self.critic_target = frozen_copy(self.critic)
        self.networks = {"actor": self.actor, "critic": self.critic, "value": self.value,
                         "critic_target": self.critic_target}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.actor_lr),
                           "critic": adam(self.critic.parameters(), config.critic_lr),
                           "value": adam(self.value.parameters(), config.value_lr)}
        self._averager = PolyakAverager(self.critic, self.critic_target)
        self._value_loss = self.compiled(self._value_loss_eager)
        self._critic_loss = self.compiled(self._critic_loss_eager)
        self._actor_loss = self.compiled(self._actor_loss_eager)

    def _new_networks(self) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
        """(actor, critic ensemble, value function); `masked_iql` builds masked ensembles instead."""
        obs_dim, act_dim, config = self.spec.observation_dim, self.spec.action_dim, self.config
        # act_dim is the number of actions if discrete
        if self.discrete:
            actor: torch.nn.Module = CategoricalPolicy(obs_dim, act_dim, config.actor_hidden)
            critic: torch.nn.Module = DiscreteEnsembleCritic(config.num_critics, obs_dim, act_dim,
                                                             config.critic_hidden)
        else:
            actor = GaussianPolicy(obs_dim, act_dim, config.actor_hidden, log_std_min=-5.0, log_std_max=2.0)
            critic = EnsembleCritic(config.num_critics, obs_dim, act_dim, config.critic_hidden)
        return actor, critic, mlp(obs_dim, 1, config.critic_hidden)

    def _member_mask(self, batch: Batch) -> dict[str, Tensor | None]:
        """Extra keyword arguments of every actor, critic and value call on `batch`: none for IQL; `masked_iql`
        passes each sample's member mask (turn-over dropout)."""
        return {}

    def _per_sample(self, loss: Tensor, batch: Batch) -> Tensor:
        """A loss as one value per sample [B]: as it is for IQL; `masked_iql` with independent members averages
        its per-member losses [K, B] over each sample's mask."""
        return loss

    def reward_transform(self, dataset: Any) -> tuple[float, float]:
        return (returns_range_scale(dataset), 0.0) if self.config.scale_rewards else (1.0, 0.0)

    # --- losses -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) V(s') for a preprocessed batch -> [B]."""
        next_value = self.value(batch.next_observations, **self._member_mask(batch)).squeeze(-1)
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    @torch.no_grad()
    def _target_q(self, batch: Batch) -> Tensor:
        return self.critic_target(batch.observations, batch.actions, **self._member_mask(batch)).min(0).values

    def _value_loss_eager(self, batch: Batch, target_q: Tensor) -> Tensor:
        value = self.value(batch.observations, **self._member_mask(batch)).squeeze(-1)
        return self._per_sample(expectile_loss(target_q - value, self.config.expectile), batch)

    def _critic_loss_eager(self, batch: Batch, target: Tensor) -> Tensor:
        squared = (self.critic(batch.observations, batch.actions, **self._member_mask(batch)) - target).pow(2)
        return self._per_sample(squared.sum(0), batch)

    def _actor_loss_eager(self, batch: Batch, target_q: Tensor) -> Tensor:
        members = self._member_mask(batch)
        with torch.no_grad():
            advantages = target_q - self.value(batch.observations, **members).squeeze(-1)
        weights = advantage_weights(advantages, self.config.beta, self.config.max_weight)
        return self._per_sample(-weights * self.actor.log_prob(batch.observations, batch.actions, **members), batch)

    def compute_losses(self, batch: Batch) -> IQLLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            target_q = self._target_q(batch)
            return IQLLosses(value=self._value_loss(batch, target_q),
                             critic=self._critic_loss(batch, self.td_target(batch)),
                             actor=self._actor_loss(batch, target_q))

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            prepared = self.preprocess(batch)
            target_q = self._target_q(prepared)
            value_loss = self.reduce("value", self._value_loss(prepared, target_q), batch)
            step(self.optimizers["value"], value_loss)
            # the actor and the critic learn from the value function just updated (as the paper's code does)
            actor_loss = self.reduce("actor", self._actor_loss(prepared, target_q), batch)
            self._set_actor_lr()
            step(self.optimizers["actor"], actor_loss)
            critic_loss = self.reduce("critic", self._critic_loss(prepared, self.td_target(prepared)), batch)
            step(self.optimizers["critic"], critic_loss)
        self._averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([value_loss.detach(), actor_loss.detach(), critic_loss.detach()]).tolist()
        return dict(zip(("value_loss", "actor_loss", "critic_loss"), metrics))

    def _set_actor_lr(self) -> None:
        if self.config.actor_lr_decay_steps > 0:
            lr = cosine_lr(self.config.actor_lr, self.num_updates, self.config.actor_lr_decay_steps)
            for group in self.optimizers["actor"].param_groups:
                group["lr"] = lr

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions or action indices (TrajAuditor's value
        estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        return self.actor.act(observations, deterministic)


@AGENTS.register("discrete_iql")
class DiscreteIQL(IQL):
    """IQL for discrete actions: a categorical policy and critics with one output per action."""

    name = "discrete_iql"
    config_class = DiscreteIQLConfig
    discrete = True


@dataclass(frozen=True)
class MaskedIQLConfig(MaskedEnsembleFields, IQLConfig):
    """IQL with turn-over dropout: actor, critics and value function are masked ensembles over episode groups."""



@AGENTS.register("masked_iql")
class MaskedIQL(MaskedOfflineMixin, IQL):
    """IQL whose actor, critics and value function are masked ensembles (continuous actions)."""

    name = "masked_iql"
    config_class = MaskedIQLConfig

    def __init__(self, spec: SpaceSpec, config: MaskedIQLConfig | None = None, *, device: str = "cpu",
                 seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()):
        super().__init__(spec, config or MaskedIQLConfig(), device=device, seed=seed, runtime=runtime)
        self._init_masks(seed)

    def _new_networks(self) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
        obs_dim, act_dim, config = self.spec.observation_dim, self.spec.action_dim, self.config
        members, norm = config.ensemble_size, config.layer_norm
        return (MaskedGaussianPolicy(members, obs_dim, act_dim, config.actor_hidden, layer_norm=norm),
                MaskedEnsembleCritic(config.num_critics, members, obs_dim, act_dim, config.critic_hidden,
                                     layer_norm=norm),
                MaskedEnsembleMLP(members, obs_dim, 1, config.critic_hidden, layer_norm=norm))
