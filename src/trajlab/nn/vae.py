"""Generative behaviour models and the policy pieces built on them (BCQ, BEAR, PLAS).

`ConditionalVAE` models the data's actions given the state: an encoder q(z | s, a) and a decoder a = tanh(f(s, z))
in the agent's [-1, 1] action space. BCQ and BEAR sample from it to stay near the data; PLAS learns a policy in
its latent space. `PerturbationActor` is BCQ's (and PLAS-P's) small bounded correction on top of decoded actions.
The pure functions below are the distinctive formulas, kept separate so unit tests can check them by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from trajlab.nn.mlp import mlp

LOG_STD_BOUNDS = (-4.0, 15.0)
"""Clamp of the encoder's log standard deviation (BCQ's published values)."""


def vae_loss(reconstruction: Tensor, actions: Tensor, mean: Tensor, log_std: Tensor, kl_weight: float) -> Tensor:
    """Per-sample VAE loss [B]: mean squared reconstruction error + kl_weight * KL(q(z|s,a) || N(0, I)).

    Both terms are averaged over their dimensions, so the batch mean equals BCQ's loss (kl_weight 0.5 there).
    """
    reconstruction_error = (reconstruction - actions).pow(2).mean(-1)
    kl = -0.5 * (1.0 + 2.0 * log_std - mean.pow(2) - (2.0 * log_std).exp()).mean(-1)
    return reconstruction_error + kl_weight * kl


def perturb(actions: Tensor, raw_perturbation: Tensor, phi: float) -> Tensor:
    """BCQ's perturbation: a + phi * tanh(xi), kept inside the [-1, 1] action box."""
    return (actions + phi * torch.tanh(raw_perturbation)).clamp(-1.0, 1.0)


def clipped_normal(shape: Sequence[int], clip: float, *, like: Tensor,
                   generator: torch.Generator | None = None) -> Tensor:
    """N(0, I) samples clamped to [-clip, clip]: BCQ's prior draws, which keep decoded actions near the data."""
    noise = torch.randn(*shape, device=like.device, dtype=like.dtype, generator=generator)
    return noise.clamp(-clip, clip)


class ConditionalVAE(nn.Module):
    """p(a | s) as a conditional VAE: encoder q(z | s, a) = N(mu, sigma), decoder a = tanh(f(s, z))."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (750, 750),
                 latent_dim: int | None = None, latent_clip: float = 0.5) -> None:
        super().__init__()
        self.latent_dim = latent_dim or 2 * action_dim
        self.latent_clip = latent_clip
        self.encoder = mlp(observation_dim + action_dim, 2 * self.latent_dim, hidden)
        self.decoder = mlp(observation_dim + self.latent_dim, action_dim, hidden)

    def encode(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log_std) of q(z | s, a)."""
        mean, log_std = self.encoder(torch.cat([observations, actions], dim=-1)).chunk(2, dim=-1)
        return mean, log_std.clamp(*LOG_STD_BOUNDS)

    def decode_raw(self, observations: Tensor, latent: Tensor) -> Tensor:
        """The decoder's output before the tanh (BEAR matches distributions there)."""
        return self.decoder(torch.cat([observations, latent], dim=-1))

    def decode(self, observations: Tensor, latent: Tensor) -> Tensor:
        """Action in [-1, 1] for a given latent code."""
        return torch.tanh(self.decode_raw(observations, latent))

    def prior_latent(self, batch_size: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Latent codes drawn from the clipped prior, [batch_size, latent_dim]."""
        return clipped_normal((batch_size, self.latent_dim), self.latent_clip, like=like, generator=generator)

    def sample(self, observations: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One action per observation, decoded from the clipped prior."""
        return self.decode(observations, self.prior_latent(observations.shape[0], observations, generator))

    def forward(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction, mean, log_std) with a reparameterised latent sample."""
        mean, log_std = self.encode(observations, actions)
        latent = mean + log_std.exp() * torch.randn_like(mean)
        return self.decode(observations, latent), mean, log_std

    def loss(self, observations: Tensor, actions: Tensor, kl_weight: float) -> Tensor:
        """Per-sample VAE loss [B] on data pairs (s, a)."""
        reconstruction, mean, log_std = self(observations, actions)
        return vae_loss(reconstruction, actions, mean, log_std, kl_weight)


class PerturbationActor(nn.Module):
    """xi_phi(s, a): a bounded correction phi * tanh(f(s, a)) added to a decoded action (BCQ, PLAS-P)."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (400, 300),
                 phi: float = 0.05) -> None:
        super().__init__()
        self.phi = phi
        self.body = mlp(observation_dim + action_dim, action_dim, hidden)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        return perturb(actions, self.body(torch.cat([observations, actions], dim=-1)), self.phi)
