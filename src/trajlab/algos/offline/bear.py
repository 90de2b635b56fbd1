"""BEAR: Bootstrapping Error Accumulation Reduction (Kumar, Fu, Tucker & Levine, NeurIPS 2019).

    critic:  sum_i (Q_i(s, a) - y)^2,  y = r + gamma (1 - d) max_{k<=n} [lam min_i + (1 - lam) max_i] Q'_i(s', a'_k)
    actor:   alpha (MMD(pi(.|s), beta(.|s)) - epsilon) - mean_k min_i Q_i(s, a~_k)   (Q term after warmup)
    alpha:   -alpha (MMD - epsilon)   (dual ascent: alpha grows while MMD > epsilon)

The actor (tanh-Gaussian) maximises the ensemble's minimum Q while a Lagrange multiplier alpha keeps the maximum
mean discrepancy (MMD) between its action samples and a VAE behaviour model's below a threshold epsilon. MMD is
measured on pre-tanh samples, as in the authors' code. For the first `warmup_steps` updates the actor only
matches the data (the MMD term); the critic target takes the best of n policy samples under soft clipped
double Q-learning. Defaults follow the maintained implementation (D4RL evaluations, also d3rlpy's).
"""

from __future__ import annotations

from collections.abc import Callable
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
from trajlab.nn.qlearning import best_of_candidates, evaluation_generator, soft_clipped_double_q, state_chunks
from trajlab.nn.training import LogScalar, PolyakAverager, adam, frozen_copy, step
from trajlab.nn.vae import ConditionalVAE

LOG_ALPHA_BOUNDS = (-5.0, 10.0)
"""Clamp of log(alpha) after each step, for stability (the authors' values)."""


# --- maximum mean discrepancy ------------------------------------------------------------------------------
def gaussian_kernel(x: Tensor, y: Tensor, sigma: float) -> Tensor:
    """k(x_i, y_j) = exp(-||x_i - y_j||^2 / (2 sigma)) for sample sets [B, n, d] and [B, m, d] -> [B, n, m]."""
    return torch.exp(-(x.unsqueeze(2) - y.unsqueeze(1)).pow(2).sum(-1) / (2.0 * sigma))


def laplacian_kernel(x: Tensor, y: Tensor, sigma: float) -> Tensor:
    """k(x_i, y_j) = exp(-||x_i - y_j||_1 / (2 sigma)) for sample sets [B, n, d] and [B, m, d] -> [B, n, m]."""
    return torch.exp(-(x.unsqueeze(2) - y.unsqueeze(1)).abs().sum(-1) / (2.0 * sigma))


KERNELS: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "gaussian": gaussian_kernel,
    "laplacian": laplacian_kernel,
}


def mmd(x: Tensor, y: Tensor, kernel: str, sigma: float) -> Tensor:
    """Per-state MMD [B] between sample sets x [B, n, d] and y [B, m, d]: sqrt(E k(x,x') + E k(y,y') - 2 E k(x,y))."""
    k = KERNELS[kernel]
    squared = k(x, x, sigma).mean((1, 2)) + k(y, y, sigma).mean((1, 2)) - 2.0 * k(x, y, sigma).mean((1, 2))
    return (squared + 1e-6).sqrt()


# --- the agent ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BEARConfig:
    """BEAR's settings; defaults are the published ones (authors' D4RL implementation)."""

    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble."""
    vae_lr: float = 3e-4
    """Adam learning rate of the VAE behaviour model."""
    alpha_lr: float = 1e-3
    """Adam learning rate of log(alpha), the Lagrange multiplier of the MMD constraint."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic."""
    vae_hidden: tuple[int, ...] = (750, 750)
    """Hidden layer widths of the VAE's encoder and decoder."""
    num_critics: int = 2
    """Critics in the (vectorised) ensemble."""
    lam: float = 0.75
    """Weight of the minimum over critics in the target (1 - lam goes to the maximum)."""
    mmd_kernel: str = "laplacian"
    """Kernel of the MMD: 'laplacian' or 'gaussian'."""
    mmd_sigma: float = 20.0
    """Bandwidth sigma of the MMD kernel."""
    mmd_threshold: float = 0.05
    """epsilon: the MMD the actor may reach before alpha pushes it back."""
    num_mmd_samples: int = 4
    """Actions sampled from the actor and from the VAE per state to estimate the MMD."""
    initial_alpha: float = 1.0
    """Starting value of the Lagrange multiplier alpha."""
    auto_alpha: bool = True
    """Tune alpha by dual gradient descent; when False alpha stays at initial_alpha."""
    num_action_samples: int = 10
    """Policy samples per state when acting (the best by the first critic is taken)."""
    num_target_samples: int = 10
    """Policy samples per next state in the critic target (the best is taken)."""
    kl_weight: float = 0.5
    """Weight of the KL term in the VAE loss."""
    warmup_steps: int = 40_000
    """Updates during which the actor only minimises the MMD to the behaviour model."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's mean and std (BEAR's paper does not)."""

    def __post_init__(self) -> None:
        if self.mmd_kernel not in KERNELS:
            raise TrajlabError(f"bear: unknown mmd_kernel {self.mmd_kernel!r}; choose from {', '.join(KERNELS)}")


@dataclass
class BEARLosses(LossOutput):
    vae: Tensor
    """Reconstruction error + kl_weight * KL of the VAE behaviour model [B]."""
    critic: Tensor
    """Squared TD error summed over the critics [B]."""
    actor: Tensor
    """alpha * (MMD - epsilon) - mean over samples of min_i Q_i(s, a~) (the Q term only after warmup) [B]."""
    alpha: Tensor
    """-alpha * (MMD - epsilon): dual ascent on the Lagrange multiplier [B]."""


@AGENTS.register("bear")
class BEAR(OfflineAgent):
    """BEAR with a VAE behaviour model, a tanh-Gaussian actor, a vectorised critic ensemble and an MMD constraint."""

    name = "bear"
    config_class = BEARConfig

    def __init__(self, spec: SpaceSpec, config: BEARConfig = BEARConfig(), *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        if spec.discrete:
            raise TrajlabError("bear needs continuous actions; use discrete_cql or discrete_bcq for discrete ones")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        obs_dim, act_dim = spec.observation_dim, spec.action_dim
        self.vae = ConditionalVAE(obs_dim, act_dim, config.vae_hidden)
        self.actor = TanhGaussianPolicy(obs_dim, act_dim, config.actor_hidden)
        self.critic = EnsembleCritic(config.num_critics, obs_dim, act_dim, config.critic_hidden)
        self.alpha = LogScalar(config.initial_alpha).requires_grad_(config.auto_alpha)
        self.vae, self.actor, self.critic, self.alpha = (
            m.to(self.device) for m in (self.vae, self.actor, self.critic, self.alpha))
        self.critic_target = frozen_copy(self.critic)
        self.networks = {"vae": self.vae, "actor": self.actor, "critic": self.critic,
                         "critic_target": self.critic_target, "alpha": self.alpha}
        self.optimizers = {"vae": adam(self.vae.parameters(), config.vae_lr),
                           "actor": adam(self.actor.parameters(), config.actor_lr),
                           "critic": adam(self.critic.parameters(), config.critic_lr)}
        if config.auto_alpha:
            self.optimizers["alpha"] = adam(self.alpha.parameters(), config.alpha_lr)
        self._policy_params = [*self.actor.parameters(), *(self.alpha.parameters() if config.auto_alpha else ())]
        self._policy_optimizers = [self.optimizers[name] for name in ("actor", "alpha") if name in self.optimizers]
        self._averager = PolyakAverager(self.critic, self.critic_target)
        self._vae_loss = self.compiled(self._vae_loss_eager)
        self._critic_loss = self.compiled(self._critic_loss_eager)
        self._actor_terms = self.compiled(self._actor_terms_eager)

    # --- losses -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma * (1 - done) * max over n policy samples of the soft-clipped target Q."""
        chunks = state_chunks(batch.next_observations, self.config.num_target_samples)
        next_value = torch.cat([self._best_sample_value(chunk) for chunk in chunks])
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    def _best_sample_value(self, next_observations: Tensor) -> Tensor:
        """max over n policy samples of lam min_i + (1 - lam) max_i Q'_i, [b] states -> [b]."""
        n = self.config.num_target_samples
        candidates = torch.tanh(self._pre_tanh_samples(next_observations, n)).flatten(0, 1)
        repeated = next_observations.repeat_interleave(n, dim=0)
        values = soft_clipped_double_q(self.critic_target(repeated, candidates), self.config.lam)
        return values.view(-1, n).max(dim=1).values

    def _pre_tanh_samples(self, observations: Tensor, num_samples: int,
                          generator: torch.Generator | None = None) -> Tensor:
        """num_samples reparameterised pre-tanh actor samples per state, [B, n, A], from one forward on [B]."""
        mean, log_std = self.actor.distribution_params(observations)
        noise = torch.randn(mean.shape[0], num_samples, mean.shape[1], device=mean.device, generator=generator)
        return mean.unsqueeze(1) + log_std.exp().unsqueeze(1) * noise

    def _behaviour_samples(self, observations: Tensor) -> Tensor:
        """m pre-tanh VAE samples per state, [B, m, A] (a fixed target for the actor)."""
        m = self.config.num_mmd_samples
        repeated = observations.repeat_interleave(m, dim=0)
        with torch.no_grad():
            raw = self.vae.decode_raw(repeated, self.vae.prior_latent(repeated.shape[0], repeated))
        return raw.view(observations.shape[0], m, -1)

    def _vae_loss_eager(self, batch: Batch) -> Tensor:
        return self.vae.loss(batch.observations, batch.actions, self.config.kl_weight)

    def _critic_loss_eager(self, batch: Batch) -> Tensor:
        target = self.td_target(batch)
        return (self.critic(batch.observations, batch.actions) - target).pow(2).sum(dim=0)

    def _actor_terms_eager(self, batch: Batch, after_warmup: bool) -> tuple[Tensor, Tensor]:
        """(actor loss, alpha loss) per sample, from one set of actor and behaviour samples."""
        config, observations = self.config, batch.observations
        pre_tanh = self._pre_tanh_samples(observations, config.num_mmd_samples)
        distance = mmd(pre_tanh, self._behaviour_samples(observations), config.mmd_kernel, config.mmd_sigma)
        constraint = distance - config.mmd_threshold
        alpha = self.alpha()
        actor = alpha.detach() * constraint
        if after_warmup:
            repeated = observations.repeat_interleave(config.num_mmd_samples, dim=0)
            q_policy = self.critic(repeated, torch.tanh(pre_tanh).flatten(0, 1)).min(dim=0).values
            actor = actor - q_policy.view(observations.shape[0], -1).mean(dim=1)
        # dual ascent: alpha grows while the constraint is violated and shrinks once it holds
        return actor, -alpha * constraint.detach()

    def compute_losses(self, batch: Batch) -> BEARLosses:
        with self.autocast():
            batch = self.preprocess(batch)
            actor, alpha = self._actor_terms(batch, self.num_updates >= self.config.warmup_steps)
            return BEARLosses(vae=self._vae_loss(batch), critic=self._critic_loss(batch), actor=actor, alpha=alpha)

    # --- training -----------------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """VAE, then critics, then actor and alpha (the MMD uses the new VAE, the Q term the new critics)."""
        with self.autocast():
            prepared = self.preprocess(batch)
            vae_loss = self.reduce("vae", self._vae_loss(prepared), batch)
            step(self.optimizers["vae"], vae_loss)
            critic_loss = self.reduce("critic", self._critic_loss(prepared), batch)
            step(self.optimizers["critic"], critic_loss)
            actor_terms, alpha_terms = self._actor_terms(prepared, self.num_updates >= self.config.warmup_steps)
            actor_loss = self.reduce("actor", actor_terms, batch)
            alpha_loss = self.reduce("alpha", alpha_terms, batch)
            # one backward for both (they share the MMD samples; their parameters are disjoint), and none into the
            # critic's weights, which the actor's Q term goes through
            for optimizer in self._policy_optimizers:
                optimizer.zero_grad(set_to_none=True)
            (actor_loss + alpha_loss).backward(inputs=self._policy_params)
            for optimizer in self._policy_optimizers:
                optimizer.step()
        with torch.no_grad():
            self.alpha.log_value.clamp_(*LOG_ALPHA_BOUNDS)
        self._averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([vae_loss.detach(), critic_loss.detach(), actor_loss.detach(), alpha_loss.detach(),
                               self.alpha().detach()]).float().tolist()
        return dict(zip(("vae_loss", "critic_loss", "actor_loss", "alpha_loss", "alpha"), metrics))

    # --- acting -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """min_i Q_i(s, a) [B] for raw observations and env-unit actions (TrajAuditor's value estimates)."""
        return self.critic(*self.network_inputs(observations, actions)).min(0).values

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        """Best of n actor samples by the first critic; deterministic mode draws them from fixed noise."""
        generator = evaluation_generator(self.device) if deterministic else None
        n = self.config.num_action_samples
        candidates = torch.tanh(self._pre_tanh_samples(observations, n, generator)).flatten(0, 1)
        repeated = observations.repeat_interleave(n, dim=0)
        return best_of_candidates(candidates, self.critic(repeated, candidates, members=slice(0, 1))[0], n)
