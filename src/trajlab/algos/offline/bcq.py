"""BCQ: Batch-Constrained deep Q-learning for continuous actions (Fujimoto, Meger & Precup, ICML 2019).

    vae:     mean_j (G(s, z)_j - a_j)^2 + kl_weight * mean_k KL(q(z_k | s, a) || N(0, 1))
    critic:  sum_i (Q_i(s, a) - y)^2,  y = r + gamma (1 - d) max_{k<=n} [lam min_i + (1 - lam) max_i] Q'_i(s', a'_k)
             a'_k = xi'(s', G(s', z_k)),  z_k ~ N(0, 1) clipped to [-0.5, 0.5]
    actor:   -Q_1(s, xi(s, G(s, z))),  xi(s, a) = clip(a + phi tanh(f(s, a)), -1, 1)

The VAE G models the data's actions; the perturbation actor xi may move a decoded action by at most phi. The
agent acts like the target: n decoded, perturbed candidates, the best by the first critic. One update steps the
VAE, then the critics, then the actor, as the authors' code does.
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
from trajlab.nn.qlearning import best_of_candidates, evaluation_generator, soft_clipped_double_q, state_chunks
from trajlab.nn.training import PolyakAverager, adam, frozen_copy, step
from trajlab.nn.vae import ConditionalVAE, PerturbationActor


@dataclass(frozen=True)
class BCQConfig:
    """BCQ's settings: the paper's, with the learning rates and batch TrajDeleter trained it with (BCQ's paper:
    1e-3 for every network, batch 100)."""

    actor_lr: float = 1e-4
    """Adam learning rate of the perturbation actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble."""
    vae_lr: float = 1e-3
    """Adam learning rate of the conditional VAE."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target actor and critics."""
    actor_hidden: tuple[int, ...] = (400, 300)
    """Hidden layer widths of the perturbation actor."""
    critic_hidden: tuple[int, ...] = (400, 300)
    """Hidden layer widths of each critic."""
    vae_hidden: tuple[int, ...] = (750, 750)
    """Hidden layer widths of the VAE's encoder and decoder."""
    num_critics: int = 2
    """Critics in the (vectorised) ensemble; 2 is clipped double Q-learning."""
    lam: float = 0.75
    """Weight of the minimum over critics in the target (1 - lam goes to the maximum)."""
    phi: float = 0.05
    """Largest perturbation the actor may add to a decoded action (in the [-1, 1] action scale)."""
    num_action_samples: int = 10
    """Candidate actions decoded per state, when acting and in the critic target."""
    kl_weight: float = 0.5
    """Weight of the KL term in the VAE loss."""
    latent_clip: float = 0.5
    """Prior latent samples are clamped to [-latent_clip, latent_clip] before decoding."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's mean and std (BCQ's paper does not)."""


@dataclass
class BCQLosses(LossOutput):
    vae: Tensor
    """Reconstruction error + kl_weight * KL of the conditional VAE [B]."""
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    actor: Tensor
    """-Q_1(s, a + xi(s, a)) for a VAE proposal a [B]."""


@AGENTS.register("bcq")
class BCQ(OfflineAgent):
    """Continuous BCQ with a VAE behaviour model, a perturbation actor and a vectorised twin critic."""

    name = "bcq"
    config_class = BCQConfig

    def __init__(self, spec: SpaceSpec, config: BCQConfig = BCQConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        if spec.discrete:
            raise TrajlabError("bcq needs continuous actions; use discrete_bcq for a discrete action set")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        obs_dim, act_dim = spec.observation_dim, spec.action_dim
        self.vae = ConditionalVAE(obs_dim, act_dim, config.vae_hidden, latent_clip=config.latent_clip)
        self.actor = PerturbationActor(obs_dim, act_dim, config.actor_hidden, config.phi)
        self.critic = EnsembleCritic(config.num_critics, obs_dim, act_dim, config.critic_hidden)
        self.vae, self.actor, self.critic = (m.to(self.device) for m in (self.vae, self.actor, self.critic))
        self.actor_target, self.critic_target = frozen_copy(self.actor), frozen_copy(self.critic)
        self.networks = {"vae": self.vae, "actor": self.actor, "critic": self.critic,
                         "actor_target": self.actor_target, "critic_target": self.critic_target}
        self.optimizers = {"vae": adam(self.vae.parameters(), config.vae_lr),
                           "actor": adam(self.actor.parameters(), config.actor_lr),
                           "critic": adam(self.critic.parameters(), config.critic_lr)}
        self._actor_params = list(self.actor.parameters())
        self._averagers = [PolyakAverager(self.actor, self.actor_target),
                           PolyakAverager(self.critic, self.critic_target)]
        self._vae_loss = self.compiled(self._vae_loss_eager)
        self._critic_loss = self.compiled(self._critic_loss_eager)
        self._actor_loss = self.compiled(self._actor_loss_eager)

    # --- losses -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma * (1 - done) * max over n perturbed VAE candidates of the soft-clipped target Q."""
        chunks = state_chunks(batch.next_observations, self.config.num_action_samples)
        next_value = torch.cat([self._best_candidate_value(chunk) for chunk in chunks])
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    def _best_candidate_value(self, next_observations: Tensor) -> Tensor:
        """max over n perturbed VAE candidates of lam min_i + (1 - lam) max_i Q'_i, [b] states -> [b]."""
        n = self.config.num_action_samples
        repeated = next_observations.repeat_interleave(n, dim=0)
        candidates = self.actor_target(repeated, self.vae.sample(repeated))
        values = soft_clipped_double_q(self.critic_target(repeated, candidates), self.config.lam)
        return values.view(-1, n).max(dim=1).values

    def _vae_loss_eager(self, batch: Batch) -> Tensor:
        return self.vae.loss(batch.observations, batch.actions, self.config.kl_weight)

    def _critic_loss_eager(self, batch: Batch) -> Tensor:
        target = self.td_target(batch)
        return (self.critic(batch.observations, batch.actions) - target).pow(2).sum(dim=0)

    def _actor_loss_eager(self, batch: Batch) -> Tensor:
        # the actor learns to perturb the VAE's proposals; the VAE learns from its own loss only
        with torch.no_grad():
            proposals = self.vae.sample(batch.observations)
        perturbed = self.actor(batch.observations, proposals)
        return -self.critic(batch.observations, perturbed, members=slice(0, 1))[0]  # Q_1 alone, as in the paper

    def compute_losses(self, batch: Batch) -> BCQLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            return BCQLosses(vae=self._vae_loss(batch), critic=self._critic_loss(batch),
                             actor=self._actor_loss(batch))

    # --- training -----------------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """VAE, then critics (their target decodes with the new VAE), then actor (on the new critic)."""
        with self.autocast():
            prepared = self.preprocess(batch)
            vae_loss = self.reduce("vae", self._vae_loss(prepared), batch)
            step(self.optimizers["vae"], vae_loss)
            critic_loss = self.reduce("critic", self._critic_loss(prepared), batch)
            step(self.optimizers["critic"], critic_loss)
            actor_loss = self.reduce("actor", self._actor_loss(prepared), batch)
            # gradients for the actor only: the critic's weights are not differentiated through
            step(self.optimizers["actor"], actor_loss, inputs=self._actor_params)
        for averager in self._averagers:
            averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([vae_loss.detach(), critic_loss.detach(), actor_loss.detach()]).float().tolist()
        return dict(zip(("vae_loss", "critic_loss", "actor_loss"), metrics))

    # --- acting -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions (TrajAuditor's value estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        """Best of n perturbed VAE proposals by the first critic; deterministic mode draws them from fixed noise."""
        generator = evaluation_generator(self.device) if deterministic else None
        n = self.config.num_action_samples
        repeated = observations.repeat_interleave(n, dim=0)
        candidates = self.actor(repeated, self.vae.sample(repeated, generator))
        return best_of_candidates(candidates, self.critic(repeated, candidates, members=slice(0, 1))[0], n)
