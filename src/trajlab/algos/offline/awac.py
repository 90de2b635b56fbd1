"""Advantage-Weighted Actor-Critic (Nair, Gupta, Dalal & Levine, 2020).

    critic:  sum_i (Q_i(s, a) - y)^2,  y = r + gamma (1 - d) min_i Q'_i(s', a'),  a' ~ pi(s')
    actor:   -w(s, a) log pi(a | s),  w = B * softmax_batch(A / lambda),
             A = min_i Q_i(s, a) - mean_k min_i Q_i(s, a_k),  a_k ~ pi(s)

The weights are normalised over the batch (a softmax times the batch size), as in the authors' code. The
policy is a Gaussian with a tanh mean and a state-independent std; neither states nor rewards are rescaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import EnsembleCritic
from trajlab.nn.policies import GaussianPolicy
from trajlab.nn.training import PolyakAverager, adam, frozen_copy, step


@dataclass(frozen=True)
class AWACConfig:
    """AWAC settings (defaults: the authors' offline MuJoCo settings)."""

    actor_hidden: tuple[int, ...] = (256, 256, 256, 256)
    """Hidden layer widths of the policy."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    actor_weight_decay: float = 1e-4
    """L2 weight decay of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    batch_size: int = 1024
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    num_critics: int = 2
    """Critics in the ensemble (their minimum is used)."""
    lam: float = 1.0
    """Temperature lambda of the advantage weights softmax(A / lambda)."""
    num_action_samples: int = 1
    """Policy samples per state for the value baseline V(s) = mean_k Q(s, a_k)."""
    log_std_min: float = -6.0
    """Lower clip of the policy's log std."""
    log_std_max: float = 0.0
    """Upper clip of the policy's log std."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's statistics (the paper does not)."""


@dataclass
class AWACLosses(LossOutput):
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    actor: Tensor
    """Advantage-weighted negative log-likelihood of the dataset action [B]."""


def awac_weights(advantages: Tensor, lam: float, sample_weights: Tensor | None = None) -> Tensor:
    """B * softmax(A / lambda) over the batch: positive weights that average to 1, without gradient.

    With per-sample weights w the softmax and the count are taken over the weighted batch (w_j exp(A_j / lambda),
    sum w), so a sample of weight 0 changes no other sample's weight: as if it were not in the batch."""
    advantages = advantages.detach()
    if sample_weights is None:
        return torch.softmax(advantages / lam, dim=0) * advantages.shape[0]
    log_normaliser = torch.logsumexp(advantages / lam + sample_weights.log(), dim=0)
    return torch.exp(advantages / lam - log_normaliser) * sample_weights.sum()


@AGENTS.register("awac")
class AWAC(OfflineAgent):
    """Critic by TD learning, actor by advantage-weighted maximum likelihood."""

    name = "awac"
    config_class = AWACConfig

    def __init__(self, spec: SpaceSpec, config: AWACConfig = AWACConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        if spec.discrete:
            raise TrajlabError("awac needs continuous actions; these actions are discrete")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        obs_dim, act_dim = spec.observation_dim, spec.action_dim
        self.actor = GaussianPolicy(obs_dim, act_dim, config.actor_hidden,
                                    log_std_min=config.log_std_min, log_std_max=config.log_std_max).to(self.device)
        self.critic = EnsembleCritic(config.num_critics, obs_dim, act_dim, config.critic_hidden).to(self.device)
        self.critic_target = frozen_copy(self.critic)
        self.networks = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}
        self.optimizers = {
            "actor": adam(self.actor.parameters(), config.actor_lr, weight_decay=config.actor_weight_decay),
            "critic": adam(self.critic.parameters(), config.critic_lr),
        }
        self._averager = PolyakAverager(self.critic, self.critic_target)
        self._critic_loss = self.compiled(self._critic_loss_eager)
        self._actor_loss = self.compiled(self._actor_loss_eager)

    # --- losses -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) min_i Q'_i(s', a'), a' ~ pi(s'), for a preprocessed batch -> [B]."""
        next_actions, _ = self.actor(batch.next_observations)
        next_q = self.critic_target(batch.next_observations, next_actions).min(0).values
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_q

    def _critic_loss_eager(self, batch: Batch) -> Tensor:
        target = self.td_target(batch)
        return (self.critic(batch.observations, batch.actions) - target).pow(2).sum(0)

    @torch.no_grad()
    def _advantages(self, batch: Batch) -> Tensor:
        size, samples = len(batch), self.config.num_action_samples
        repeated = batch.observations.repeat_interleave(samples, dim=0)
        policy_actions, _ = self.actor(repeated)
        # data and policy actions through the critics in one forward
        q = self.critic(torch.cat([batch.observations, repeated]), torch.cat([batch.actions, policy_actions]))
        q = q.min(0).values
        return q[:size] - q[size:].view(size, samples).mean(1)

    def _actor_loss_eager(self, batch: Batch) -> Tensor:
        weights = awac_weights(self._advantages(batch), self.config.lam, batch.weights)
        return -weights * self.actor.log_prob(batch.observations, batch.actions)

    def compute_losses(self, batch: Batch) -> AWACLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            return AWACLosses(critic=self._critic_loss(batch), actor=self._actor_loss(batch))

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            prepared = self.preprocess(batch)
            critic_loss = self.reduce("critic", self._critic_loss(prepared), batch)
            step(self.optimizers["critic"], critic_loss)
            actor_loss = self.reduce("actor", self._actor_loss(prepared), batch)
            step(self.optimizers["actor"], actor_loss)
            self._averager.update(self.config.tau)
            self.num_updates += 1
            metrics = torch.stack([critic_loss.detach(), actor_loss.detach()]).tolist()
            return dict(zip(("critic_loss", "actor_loss"), metrics))

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions (TrajAuditor's value estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        action, _ = self.actor(observations, deterministic)
        return action
