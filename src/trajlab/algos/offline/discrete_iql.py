"""Implicit Q-Learning for discrete actions (after Kostrikov, Nair & Levine, 2022).

    value:   L_tau(min_i Q'_i(s, a) - V(s)),  L_tau(u) = |tau - 1(u < 0)| u^2  (expectile regression)
    critic:  sum_i (Q_i(s, a) - (r + gamma (1 - d) V(s')))^2
    actor:   -min(exp(beta (min_i Q'_i(s, a) - V(s))), max_weight) log pi(a | s),  pi = softmax(f(s))

As in `iql`, Q is only ever queried at dataset actions; here one network outputs Q(s, .) for every action and
the twin critics are one vectorised ensemble. The policy is categorical; the update order and defaults are
IQL's (value first, then actor and critics on the new V; expectile 0.7, beta 3, 256x256, Adam at 3e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from trajlab.algos.base import AGENTS
from trajlab.algos.offline.base import OfflineAgent
from trajlab.algos.offline.discrete_bc import sample_categorical
from trajlab.algos.offline.iql import advantage_weights, expectile_loss
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import EnsembleValue
from trajlab.nn.mlp import mlp
from trajlab.nn.qlearning import action_values
from trajlab.nn.training import PolyakAverager, adam, autocast, frozen_copy, step


@dataclass(frozen=True)
class DiscreteIQLConfig:
    """Discrete IQL settings (defaults: IQL's)."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the categorical policy."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic and of the value function."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
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
    normalize_observations: bool = False
    """Standardise observations with the dataset's statistics (IQL's paper does not)."""
    compile: bool = False
    """Run the loss functions through torch.compile (first updates compile for 10-20 s)."""
    bf16: bool = False
    """bfloat16 autocast of the matmuls in updates: faster on CPUs with AVX512-BF16/AMX and on GPUs, but network
    outputs keep only ~3 significant digits (off by default; the papers train in float32)."""


@dataclass
class DiscreteIQLLosses(LossOutput):
    value: Tensor
    """Expectile loss of V(s) against min_i Q'_i(s, a) [B]."""
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    actor: Tensor
    """Advantage-weighted negative log-likelihood of the dataset action [B]."""


@AGENTS.register("discrete_iql")
class DiscreteIQL(OfflineAgent):
    """Expectile value learning plus advantage-weighted extraction of a categorical policy."""

    name = "discrete_iql"
    config_class = DiscreteIQLConfig

    def __init__(self, spec: SpaceSpec, config: DiscreteIQLConfig = DiscreteIQLConfig(), *, device: str = "cpu",
                 seed: int = 0):
        if not spec.discrete:
            raise TrajlabError("discrete_iql needs discrete actions; use iql for continuous ones")
        super().__init__(spec, config, device=device, seed=seed)
        obs_dim, num_actions = spec.observation_dim, spec.action_dim
        self.actor = mlp(obs_dim, num_actions, config.actor_hidden)
        self.critic = EnsembleValue(config.num_critics, obs_dim, num_actions, config.critic_hidden)
        self.value = mlp(obs_dim, 1, config.critic_hidden)
        self.actor, self.critic, self.value = (m.to(self.device) for m in (self.actor, self.critic, self.value))
        self.critic_target = frozen_copy(self.critic)
        self.networks = {"actor": self.actor, "critic": self.critic, "value": self.value,
                         "critic_target": self.critic_target}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.actor_lr),
                           "critic": adam(self.critic.parameters(), config.critic_lr),
                           "value": adam(self.value.parameters(), config.value_lr)}
        self._averager = PolyakAverager(self.critic, self.critic_target)
        maybe_compile = torch.compile if config.compile else (lambda fn: fn)
        self._value_loss = maybe_compile(self._value_loss_eager)
        self._critic_loss = maybe_compile(self._critic_loss_eager)
        self._actor_loss = maybe_compile(self._actor_loss_eager)

    # --- losses -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) V(s') for a preprocessed batch -> [B]."""
        next_value = self.value(batch.next_observations).squeeze(-1)
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    @torch.no_grad()
    def _target_q(self, batch: Batch) -> Tensor:
        return action_values(self.critic_target(batch.observations), batch.actions).min(dim=0).values

    def _value_loss_eager(self, batch: Batch, target_q: Tensor) -> Tensor:
        return expectile_loss(target_q - self.value(batch.observations).squeeze(-1), self.config.expectile)

    def _critic_loss_eager(self, batch: Batch, target: Tensor) -> Tensor:
        return (action_values(self.critic(batch.observations), batch.actions) - target).pow(2).sum(dim=0)

    def _actor_loss_eager(self, batch: Batch, target_q: Tensor) -> Tensor:
        with torch.no_grad():
            advantages = target_q - self.value(batch.observations).squeeze(-1)
        weights = advantage_weights(advantages, self.config.beta, self.config.max_weight)
        return weights * F.cross_entropy(self.actor(batch.observations), batch.actions, reduction="none")

    def compute_losses(self, batch: Batch) -> DiscreteIQLLosses:
        with autocast(self.device, self.config.bf16):
            batch = self.preprocess(batch)
            target_q = self._target_q(batch)
            return DiscreteIQLLosses(value=self._value_loss(batch, target_q),
                                     critic=self._critic_loss(batch, self.td_target(batch)),
                                     actor=self._actor_loss(batch, target_q))

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with autocast(self.device, self.config.bf16):
            prepared = self.preprocess(batch)
            target_q = self._target_q(prepared)
            value_loss = self.reduce("value", self._value_loss(prepared, target_q), batch)
            step(self.optimizers["value"], value_loss)
            # the actor and the critics learn from the value function just updated (as IQL's code does)
            actor_loss = self.reduce("actor", self._actor_loss(prepared, target_q), batch)
            step(self.optimizers["actor"], actor_loss)
            critic_loss = self.reduce("critic", self._critic_loss(prepared, self.td_target(prepared)), batch)
            step(self.optimizers["critic"], critic_loss)
        self._averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([value_loss.detach(), actor_loss.detach(), critic_loss.detach()]).float().tolist()
        return dict(zip(("value_loss", "actor_loss", "critic_loss"), metrics))

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and action indices (TrajAuditor's value estimates)."""
        observations, actions = self.network_inputs(observations, actions)
        return action_values(self.critic(observations), actions.long()).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        logits = self.actor(observations)
        return logits.argmax(dim=-1) if deterministic else sample_categorical(logits)
