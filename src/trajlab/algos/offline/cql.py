"""Conservative Q-Learning, CQL(H) (Kumar, Zhou, Tucker & Levine, 2020), on a SAC actor-critic.

    critic:        sum_i (Q_i(s, a) - y)^2,  y = r + gamma (1 - d) min_i Q'_i(s', a'),  a' ~ pi(s')
    conservative:  w * sum_i [ T logsumexp_k((Q_i(s, a_k) - log mu(a_k)) / T) - Q_i(s, a) ]
    actor:         alpha log pi(a~ | s) - min_i Q_i(s, a~),  a~ ~ pi(s)  (SAC, with learned temperature alpha)

The logsumexp runs over n uniform actions and n policy actions at s and at s' (importance-sampled by their
densities mu), as in the authors' code. All 3n + 1 actions of a state go through the critic ensemble in one
batched forward. With `lagrange_lr` > 0 the weight w is scaled by a Lagrange multiplier that holds the gap
near `lagrange_threshold` (CQL-Lagrange); by default w is fixed (the paper's MuJoCo setting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import EnsembleCritic
from trajlab.nn.policies import TanhGaussianPolicy
from trajlab.nn.training import LogScalar, PolyakAverager, adam, frozen_copy, step


@dataclass(frozen=True)
class CQLConfig:
    """CQL settings (defaults: the paper's MuJoCo settings, which TrajDeleter also used)."""

    actor_hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of the policy."""
    critic_hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of each critic."""
    actor_lr: float = 1e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    temperature_lr: float = 1e-4
    """Adam learning rate of the entropy temperature (0: keep `initial_temperature`)."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    num_critics: int = 2
    """Critics in the ensemble (their minimum is used)."""
    initial_temperature: float = 1.0
    """Initial entropy temperature alpha of the SAC actor."""
    target_entropy: float | None = None
    """Entropy the temperature steers towards (None: -action_dim)."""
    conservative_weight: float = 5.0
    """Weight w of the conservative penalty."""
    n_actions: int = 10
    """Sampled actions per source (uniform, pi(s), pi(s')) in the logsumexp."""
    cql_temperature: float = 1.0
    """Temperature T of the logsumexp."""
    lagrange_lr: float = 0.0
    """Adam learning rate of the Lagrange multiplier on the penalty (0: no multiplier, w fixed)."""
    lagrange_threshold: float = 10.0
    """Gap the Lagrange multiplier aims for (only with lagrange_lr > 0)."""
    soft_backup: bool = False
    """Subtract alpha log pi(a'|s') in the TD target (the paper's MuJoCo runs do not)."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's statistics (the paper does not)."""


@dataclass
class CQLLosses(LossOutput):
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    conservative: Tensor
    """Conservative penalty w * sum_i (logsumexp_i - Q_i(s, a)), times the Lagrange multiplier if any [B]."""
    actor: Tensor
    """SAC actor loss alpha log pi - min_i Q_i [B]."""
    temperature: Tensor
    """SAC temperature loss -log alpha (log pi + target entropy) [B]."""
    lagrange: Tensor | None = None
    """Lagrange multiplier loss (only with lagrange_lr > 0) [B]."""


def cql_logsumexp(q_values: Tensor, log_densities: Tensor, temperature: float = 1.0) -> Tensor:
    """T * logsumexp((Q - log mu) / T) over the last axis: a soft maximum of Q over importance-sampled actions."""
    return temperature * torch.logsumexp((q_values - log_densities) / temperature, dim=-1)


def conservative_gap(q_samples: Tensor, log_densities: Tensor, q_data: Tensor, temperature: float = 1.0) -> Tensor:
    """logsumexp term minus Q of the dataset action: [N, B, K], [B, K], [N, B] -> [N, B]."""
    return cql_logsumexp(q_samples, log_densities, temperature) - q_data


@AGENTS.register("cql")
class CQL(OfflineAgent):
    """SAC with a penalty that pushes Q down on sampled actions and up on dataset actions."""

    name = "cql"
    config_class = CQLConfig

    def __init__(self, spec: SpaceSpec, config: CQLConfig = CQLConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        if spec.discrete:
            raise TrajlabError("cql needs continuous actions; these actions are discrete")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        obs_dim, act_dim = spec.observation_dim, spec.action_dim
        self.actor = TanhGaussianPolicy(obs_dim, act_dim, config.actor_hidden).to(self.device)
        self.critic = EnsembleCritic(config.num_critics, obs_dim, act_dim, config.critic_hidden).to(self.device)
        self.critic_target = frozen_copy(self.critic)
        self.temperature = LogScalar(config.initial_temperature).to(self.device)
        self.networks = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                         "temperature": self.temperature}
        self.optimizers = {"actor": adam(self.actor.parameters(), config.actor_lr),
                           "critic": adam(self.critic.parameters(), config.critic_lr),
                           "temperature": adam(self.temperature.parameters(), config.temperature_lr)}
        self.lagrange: LogScalar | None = None
        if config.lagrange_lr > 0:
            self.lagrange = self.networks["lagrange"] = LogScalar(1.0).to(self.device)
            self.optimizers["lagrange"] = adam(self.lagrange.parameters(), config.lagrange_lr)
        self.target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
        self._uniform_log_density = act_dim * math.log(0.5)  # density of U(-1, 1)^act_dim
        self._actor_params = list(self.actor.parameters())
        self._actor_and_temperature = [*self._actor_params, self.temperature.log_value]
        self._averager = PolyakAverager(self.critic, self.critic_target)
        self._critic_terms = self.compiled(self._critic_terms_eager)
        self._actor_terms = self.compiled(self._actor_terms_eager)

    # --- losses -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) min_i Q'_i(s', a'), a' ~ pi(s'), for a preprocessed batch -> [B]."""
        next_actions, next_log_probs = self.actor(batch.next_observations)
        next_q = self.critic_target(batch.next_observations, next_actions).min(0).values
        if self.config.soft_backup:
            next_q = next_q - self.temperature() * next_log_probs
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_q

    @torch.no_grad()
    def _sampled_actions(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """n uniform, n pi(s) and n pi(s') actions per state with their log densities: [B, 3n, act], [B, 3n]."""
        size, n = len(batch), self.config.n_actions
        policy_actions, log_probs = self.actor.sample_n(torch.cat([batch.observations, batch.next_observations]), n)
        uniform = torch.rand(size, n, self.spec.action_dim, device=self.device) * 2.0 - 1.0
        actions = torch.cat([uniform, policy_actions[:size], policy_actions[size:]], dim=1)
        uniform_log_density = torch.full((size, n), self._uniform_log_density, device=self.device)
        return actions, torch.cat([uniform_log_density, log_probs[:size], log_probs[size:]], dim=1)

    def _critic_terms_eager(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(squared TD error summed over critics [B], conservative gap of each critic [N, B])."""
        sampled, log_densities = self._sampled_actions(batch)
        size, count = sampled.shape[0], sampled.shape[1] + 1
        actions = torch.cat([batch.actions.unsqueeze(1), sampled], dim=1).reshape(size * count, -1)
        observations = batch.observations.unsqueeze(1).expand(-1, count, -1).reshape(size * count, -1)
        q = self.critic.forward_chunked(observations, actions).view(-1, size, count)
        q_data, q_samples = q[..., 0], q[..., 1:]
        td_error = (q_data - self.td_target(batch)).pow(2).sum(0)
        return td_error, conservative_gap(q_samples, log_densities, q_data, self.config.cql_temperature)

    def _actor_terms_eager(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(actor loss [B], temperature loss [B])."""
        actions, log_probs = self.actor(batch.observations)
        q = self.critic(batch.observations, actions).min(0).values
        actor = self.temperature().detach() * log_probs - q
        temperature = -self.temperature.log_value * (log_probs.detach() + self.target_entropy)
        return actor, temperature

    def _penalty_terms(self, gap: Tensor) -> tuple[Tensor, Tensor | None]:
        """(conservative penalty [B], Lagrange multiplier loss [B] or None) from the gaps [N, B]."""
        weight = self.config.conservative_weight
        if self.lagrange is None:
            return weight * gap.sum(0), None
        multiplier = self.lagrange().clamp(0.0, 1e6)
        lagrange = -multiplier * (weight * gap.detach().mean(0) - self.config.lagrange_threshold)
        return multiplier.detach() * weight * gap.sum(0), lagrange

    def compute_losses(self, batch: Batch) -> CQLLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            td_error, gap = self._critic_terms(batch)
            conservative, lagrange = self._penalty_terms(gap)
            actor, temperature = self._actor_terms(batch)
            return CQLLosses(critic=td_error, conservative=conservative, actor=actor, temperature=temperature,
                             lagrange=lagrange)

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            prepared = self.preprocess(batch)
            td_error, gap = self._critic_terms(prepared)
            conservative, lagrange = self._penalty_terms(gap)
            td_loss = self.reduce("critic", td_error, batch)
            conservative_loss = self.reduce("conservative", conservative, batch)
            step(self.optimizers["critic"], td_loss + conservative_loss)
            metrics = {"critic_loss": td_loss.detach(), "conservative_loss": conservative_loss.detach()}
            if lagrange is not None:
                lagrange_loss = self.reduce("lagrange", lagrange, batch)
                step(self.optimizers["lagrange"], lagrange_loss)
                metrics["lagrange_multiplier"] = self.lagrange().detach()
            actor, temperature = self._actor_terms(prepared)
            actor_loss = self.reduce("actor", actor, batch)
            if self.config.temperature_lr > 0:  # disjoint parameters: one backward for both
                step([self.optimizers["actor"], self.optimizers["temperature"]],
                     actor_loss + self.reduce("temperature", temperature, batch), inputs=self._actor_and_temperature)
            else:
                step(self.optimizers["actor"], actor_loss, inputs=self._actor_params)
            self._averager.update(self.config.tau)
            self.num_updates += 1
            metrics.update(actor_loss=actor_loss.detach(), temperature=self.temperature().detach())
            return dict(zip(metrics, torch.stack(list(metrics.values())).tolist()))

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions (TrajAuditor's value estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        action, _ = self.actor(observations, deterministic)
        return action
