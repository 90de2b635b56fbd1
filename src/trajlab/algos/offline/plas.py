"""PLAS-P: Policy in the Latent Action Space, with the perturbation layer (Zhou, Bajracharya & Held, CoRL 2020).

    vae (pretraining):  as BCQ's,  mean_j (G(s, z)_j - a_j)^2 + kl_weight * KL(q(z | s, a) || N(0, I))
    policy:             pi(s) = xi(s, G(s, z_max tanh(f(s)))),  xi(s, a) = clip(a + phi tanh(g(s, a)), -1, 1)
    critic:             sum_i (Q_i(s, a) - y)^2,  y = r + gamma (1 - d) [lam min_i + (1 - lam) max_i] Q'_i(s', pi'(s'))
    actor:              -Q_1(s, pi(s))

A conditional VAE is first trained alone on the data's actions (`vae_pretrain_steps` updates, counted by the
agent). After that the VAE is frozen and the actor learns a deterministic latent action z in
[-max_latent_action, max_latent_action]; the decoder maps it to an action near the data's, and a perturbation
layer may move it by at most phi. The critics use soft clipped double Q-learning; actor and critics have
Polyak-averaged targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import EnsembleCritic
from trajlab.nn.mlp import mlp
from trajlab.nn.qlearning import soft_clipped_double_q
from trajlab.nn.training import PolyakAverager, adam, frozen_copy, step
from trajlab.nn.vae import ConditionalVAE, PerturbationActor


def squash_latent(raw: Tensor, max_latent_action: float) -> Tensor:
    """A latent action in [-max_latent_action, max_latent_action]: max_latent_action * tanh(raw)."""
    return max_latent_action * torch.tanh(raw)


class LatentPerturbationActor(nn.Module):
    """PLAS-P's actor: s -> z (latent policy) -> a = decoder(s, z) -> a + phi * tanh(xi(s, a)), clipped."""

    def __init__(self, observation_dim: int, action_dim: int, latent_dim: int, hidden: Sequence[int],
                 max_latent_action: float, phi: float) -> None:
        super().__init__()
        self.max_latent_action = max_latent_action
        self.latent_policy = mlp(observation_dim, latent_dim, hidden)
        self.perturbation = PerturbationActor(observation_dim, action_dim, hidden, phi)

    def latent_action(self, observations: Tensor) -> Tensor:
        return squash_latent(self.latent_policy(observations), self.max_latent_action)

    def forward(self, observations: Tensor, vae: ConditionalVAE) -> Tensor:
        decoded = vae.decode(observations, self.latent_action(observations))
        return self.perturbation(observations, decoded)


@dataclass(frozen=True)
class PLASConfig:
    """PLAS-P's settings: the paper's (D4RL locomotion), with the critic learning rate and batch TrajDeleter trained
    it with (PLAS's paper: 1e-3 and 100)."""

    actor_lr: float = 1e-4
    """Adam learning rate of the latent policy and perturbation layer."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble."""
    vae_lr: float = 1e-4
    """Adam learning rate of the conditional VAE during pretraining."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target actor and critics."""
    actor_hidden: tuple[int, ...] = (400, 300)
    """Hidden layer widths of the latent policy and of the perturbation layer."""
    critic_hidden: tuple[int, ...] = (400, 300)
    """Hidden layer widths of each critic."""
    vae_hidden: tuple[int, ...] = (750, 750)
    """Hidden layer widths of the VAE's encoder and decoder."""
    num_critics: int = 2
    """Critics in the (vectorised) ensemble."""
    lam: float = 0.75
    """Weight of the minimum over critics in the target (1 - lam goes to the maximum)."""
    max_latent_action: float = 2.0
    """Bound of the latent policy's output; decoded latents stay where the VAE has seen data."""
    phi: float = 0.05
    """Largest change the perturbation layer may make to a decoded action (in the [-1, 1] action scale)."""
    kl_weight: float = 0.5
    """Weight of the KL term in the VAE loss."""
    vae_pretrain_steps: int = 500_000
    """Updates that train only the VAE; afterwards the VAE is frozen and the actor and critics learn."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's mean and std (PLAS's paper does not)."""


@dataclass
class PLASLosses(LossOutput):
    """The losses of the current phase: `vae` while pretraining, then `critic` and `actor` (others None)."""

    vae: Tensor | None = None
    """Reconstruction error + kl_weight * KL of the conditional VAE [B]."""
    critic: Tensor | None = None
    """Squared TD error summed over the critics [B]."""
    actor: Tensor | None = None
    """-Q_1(s, pi(s)) of the decoded, perturbed latent action [B]."""


@AGENTS.register("plas")
class PLAS(OfflineAgent):
    """PLAS with the perturbation layer (PLAS-P): a deterministic policy in a pretrained VAE's latent space."""

    name = "plas"
    config_class = PLASConfig

    def __init__(self, spec: SpaceSpec, config: PLASConfig = PLASConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        if spec.discrete:
            raise TrajlabError("plas needs continuous actions; use discrete_bcq or discrete_cql for discrete ones")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        obs_dim, act_dim = spec.observation_dim, spec.action_dim
        self.vae = ConditionalVAE(obs_dim, act_dim, config.vae_hidden)
        self.actor = LatentPerturbationActor(obs_dim, act_dim, self.vae.latent_dim, config.actor_hidden,
                                             config.max_latent_action, config.phi)
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

    @property
    def pretraining(self) -> bool:
        """True while the VAE is still being pretrained (the first `vae_pretrain_steps` updates)."""
        return self.num_updates < self.config.vae_pretrain_steps

    # --- losses -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma * (1 - done) * soft-clipped target Q of the target actor's action at the next state."""
        next_observations = batch.next_observations
        next_actions = self.actor_target(next_observations, self.vae)
        next_value = soft_clipped_double_q(self.critic_target(next_observations, next_actions), self.config.lam)
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    def _vae_loss_eager(self, batch: Batch) -> Tensor:
        return self.vae.loss(batch.observations, batch.actions, self.config.kl_weight)

    def _critic_loss_eager(self, batch: Batch) -> Tensor:
        target = self.td_target(batch)
        return (self.critic(batch.observations, batch.actions) - target).pow(2).sum(dim=0)

    def _actor_loss_eager(self, batch: Batch) -> Tensor:
        actions = self.actor(batch.observations, self.vae)
        return -self.critic(batch.observations, actions, members=slice(0, 1))[0]  # Q_1 alone, as in the paper

    def compute_losses(self, batch: Batch) -> PLASLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            if self.pretraining:
                return PLASLosses(vae=self._vae_loss(batch))
            return PLASLosses(critic=self._critic_loss(batch), actor=self._actor_loss(batch))

    # --- training -----------------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """While pretraining: the VAE alone. Then: critics, then the actor on the new critics (VAE frozen)."""
        with self.autocast():
            prepared = self.preprocess(batch)
            if self.pretraining:
                return self._pretrain_vae(prepared, batch)
            critic_loss = self.reduce("critic", self._critic_loss(prepared), batch)
            step(self.optimizers["critic"], critic_loss)
            actor_loss = self.reduce("actor", self._actor_loss(prepared), batch)
            # gradients for the actor only: neither the critic nor the frozen decoder is differentiated
            step(self.optimizers["actor"], actor_loss, inputs=self._actor_params)
        for averager in self._averagers:
            averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([critic_loss.detach(), actor_loss.detach()]).float().tolist()
        return dict(zip(("critic_loss", "actor_loss"), metrics))

    def _pretrain_vae(self, prepared: Batch, batch: Batch) -> dict[str, float]:
        vae_loss = self.reduce("vae", self._vae_loss(prepared), batch)
        step(self.optimizers["vae"], vae_loss)
        self.num_updates += 1
        return {"vae_loss": vae_loss.item()}

    # --- acting -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions (TrajAuditor's value estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        """The decoded, perturbed latent action (PLAS's policy is deterministic either way)."""
        return self.actor(observations, self.vae)
