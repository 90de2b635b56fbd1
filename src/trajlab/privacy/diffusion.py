"""A diffusion model of transitions (SynthER, Lu et al. 2023): x = [s, a, r, s', done] as one flat vector.

The denoiser is SynthER's residual MLP; noise levels, preconditioning, the loss weight and the stochastic Heun
sampler are EDM's (Karras et al. 2022). Nothing here uses BatchNorm: Opacus cannot compute its per-sample
gradients, and DP fine-tuning (`privacy.training`) needs them for every layer.

Standardisation statistics are part of what the privacy budget covers: a model fine-tuned on private data uses
the statistics of its PUBLIC pre-training data (or a `Standardiser` the caller supplies, e.g. one estimated
with DP), never the raw statistics of the private data, which would leak each dimension's mean and spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trajlab.core.errors import TrajlabError
from trajlab.data.dataset import TransitionDataset


@dataclass(frozen=True)
class DiffusionConfig:
    """The denoiser's shape, EDM's noise distribution and the sampler (defaults: SynthER / EDM)."""

    width: int = 2048
    """Width of the residual MLP (SynthER: 2048)."""
    depth: int = 6
    """Number of residual blocks (SynthER: 6)."""
    projection: int = 128
    """Width the input and the time features are projected to before the residual MLP (SynthER: 128)."""
    time_features: int = 16
    """Random Fourier features of the noise level (frozen, not learned; SynthER: 16)."""
    layer_norm: bool = True
    """Layer norm inside each residual block, as SynthER (Opacus computes its per-sample gradients)."""
    sigma_data: float = 1.0
    """EDM's sigma_data: the data's standard deviation after standardisation."""
    p_mean: float = -1.2
    """Mean of log sigma during training (log sigma ~ N(p_mean, p_std^2))."""
    p_std: float = 1.2
    """Standard deviation of log sigma during training."""
    sample_steps: int = 128
    """Heun sampler steps (SynthER: 128)."""
    sigma_min: float = 0.002
    """Smallest noise level of the sampler."""
    sigma_max: float = 80.0
    """Largest noise level of the sampler (where sampling starts)."""
    rho: float = 7.0
    """Exponent of the sampler's noise schedule (EDM: 7)."""
    s_churn: float = 80.0
    """Total stochasticity added by the sampler (EDM's S_churn)."""
    s_tmin: float = 0.05
    """Noise is added only at noise levels at least this (EDM's S_tmin)."""
    s_tmax: float = 50.0
    """Noise is added only at noise levels at most this (EDM's S_tmax)."""
    s_noise: float = 1.003
    """Scale of the added noise, slightly above 1 to offset the denoiser's shrinkage (EDM's S_noise)."""


def check_diffusion_config(config: DiffusionConfig) -> None:
    if min(config.width, config.depth, config.projection, config.sample_steps) < 1:
        raise TrajlabError("diffusion width, depth, projection and sample_steps must be at least 1")
    if config.time_features < 2 or config.time_features % 2:
        raise TrajlabError(f"time_features must be even and at least 2, got {config.time_features}")
    if not 0 < config.sigma_min < config.sigma_max:
        raise TrajlabError(f"need 0 < sigma_min < sigma_max, got {config.sigma_min}, {config.sigma_max}")


# --- transitions as vectors ------------------------------------------------------------------------------------
def transition_dim(observation_dim: int, action_dim: int) -> int:
    """Length of x = [s, a, r, s', done]."""
    return 2 * observation_dim + action_dim + 2


def transition_matrix(dataset: TransitionDataset) -> np.ndarray:
    """[N, transition_dim] float32 rows [s, a, r, s', done] (done = terminal, not timeout)."""
    if dataset.discrete:
        raise TrajlabError("synthetic transitions need continuous actions; this dataset's actions are discrete")
    return np.concatenate([dataset.observations, dataset.actions, dataset.rewards[:, None],
                           dataset.next_observations, dataset.terminals[:, None].astype(np.float32)],
                          axis=1).astype(np.float32)


@dataclass(frozen=True)
class Standardiser:
    """Per-dimension (x - mean) / std on every column but the last (done, a 0/1 flag thresholded after sampling)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray) -> Standardiser:
        """Statistics of `rows` ([N, D]); call it on PUBLIC data only (see the module docstring)."""
        values = np.asarray(rows, dtype=np.float64)[:, :-1]
        std = values.std(axis=0)
        # a constant column (a fixed joint, a reward that never changes) would divide by zero
        std = np.where(std > 1e-6, std, 1.0)
        return cls(values.mean(axis=0).astype(np.float32), std.astype(np.float32))

    @property
    def dim(self) -> int:
        return len(self.mean) + 1

    def forward(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        return np.concatenate([(rows[:, :-1] - self.mean) / self.std, rows[:, -1:]], axis=1)

    def inverse(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        done = (rows[:, -1:] > 0.5).astype(np.float32)
        return np.concatenate([rows[:, :-1] * self.std + self.mean, done], axis=1)

    def state(self) -> dict[str, Tensor]:
        return {"mean": torch.from_numpy(self.mean.copy()), "std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Standardiser:
        return cls(np.asarray(state["mean"], dtype=np.float32), np.asarray(state["std"], dtype=np.float32))


# --- SynthER's denoiser ----------------------------------------------------------------------------------------
class RandomFourierFeatures(nn.Module):
    """[t, sin(2 pi w t), cos(2 pi w t)] with w ~ N(0, 1) fixed at construction (a buffer: never trained)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("weights", torch.randn(features // 2))

    def forward(self, t: Tensor) -> Tensor:
        t = t.reshape(-1, 1)
        angles = t * self.weights[None, :] * (2 * math.pi)
        return torch.cat([t, angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """x + Linear(ReLU(LayerNorm(x)))."""

    def __init__(self, width: int, layer_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.linear = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear(torch.relu(self.norm(x)))


class Denoiser(nn.Module):
    """F(x, c_noise): SynthER's ResidualMLPDenoiser (projection + time MLP -> residual MLP -> output)."""

    def __init__(self, dim: int, config: DiffusionConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, config.projection)
        self.time_mlp = nn.Sequential(RandomFourierFeatures(config.time_features),
                                      nn.Linear(config.time_features + 1, config.projection), nn.SiLU(),
                                      nn.Linear(config.projection, config.projection))
        blocks = [ResidualBlock(config.width, config.layer_norm) for _ in range(config.depth)]
        self.body = nn.Sequential(nn.Linear(config.projection, config.width), *blocks,
                                  nn.LayerNorm(config.width) if config.layer_norm else nn.Identity(), nn.ReLU())
        self.out = nn.Linear(config.width, dim)

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        return self.out(self.body(self.proj(x) + self.time_mlp(c_noise)))


# --- EDM -------------------------------------------------------------------------------------------------------
def preconditioning(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM's (c_skip, c_out, c_in, c_noise) for noise levels `sigma` (any shape)."""
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / total.sqrt(), 1 / total.sqrt(), sigma.log() / 4


def loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2: unit effective weight at every level."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def denoise(model: nn.Module, x: Tensor, sigma: Tensor, sigma_data: float) -> Tensor:
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise), sigma of shape [B]."""
    c_skip, c_out, c_in, c_noise = preconditioning(sigma[:, None], sigma_data)
    return c_skip * x + c_out * model(c_in * x, c_noise[:, 0])


def sample_sigmas(batch: int, config: DiffusionConfig, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> Tensor:
    """Training noise levels: log sigma ~ N(p_mean, p_std^2)."""
    normal = torch.randn(batch, generator=generator, device=device)
    return (config.p_mean + config.p_std * normal).exp()


class WeightedMSE(nn.Module):
    """The EDM loss as a criterion: weight * mean_d (prediction - target)^2 per row, reduced by `reduction`.

    A module with a `reduction` attribute because Opacus's ghost clipping (DPLossFastGradientClipping) calls
    the criterion itself, switching `reduction` to "none" to get the per-sample losses it clips; the per-sample
    weight lambda(sigma) is an input so that each row keeps the weight of its own noise level."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
        loss = weight * (prediction - target).pow(2).mean(dim=1)
        if self.reduction == "none":
            return loss
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        raise ValueError(f"unknown reduction {self.reduction!r}")


def loss_terms(model: nn.Module, x: Tensor, sigma: Tensor, noise: Tensor,
               sigma_data: float) -> tuple[Tensor, Tensor, Tensor]:
    """(D(x + sigma n; sigma), x, lambda(sigma)): what `WeightedMSE` takes to give the EDM loss."""
    denoised = denoise(model, x + sigma[:, None] * noise, sigma, sigma_data)
    return denoised, x, loss_weight(sigma, sigma_data)


def per_sample_loss(model: nn.Module, x: Tensor, sigma: Tensor, noise: Tensor, sigma_data: float) -> Tensor:
    """lambda(sigma) * mean_d (D(x + sigma n; sigma) - x)^2, shape [B] (what DP-SGD clips per sample)."""
    return WeightedMSE("none")(*loss_terms(model, x, sigma, noise, sigma_data))


def edm_terms(model: nn.Module, x: Tensor, config: DiffusionConfig,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """`loss_terms` at freshly drawn noise levels and noise (drawn in `edm_loss`'s order: the same generator
    state gives the same draws either way)."""
    sigma = sample_sigmas(len(x), config, generator, x.device)
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    return loss_terms(model, x, sigma, noise, config.sigma_data)


def edm_loss(model: nn.Module, x: Tensor, config: DiffusionConfig,
             generator: torch.Generator | None = None) -> Tensor:
    """Per-sample EDM training loss [B] at freshly drawn noise levels and noise."""
    return WeightedMSE("none")(*edm_terms(model, x, config, generator))


def sampler_sigmas(config: DiffusionConfig, device: torch.device | str = "cpu") -> Tensor:
    """The sampler's noise levels, sigma_max down to sigma_min (EDM eq. 5), then a final 0."""
    steps = torch.arange(config.sample_steps, dtype=torch.float64, device=device)
    low, high = config.sigma_min ** (1 / config.rho), config.sigma_max ** (1 / config.rho)
    ramp = steps / max(config.sample_steps - 1, 1)
    sigmas = (high + ramp * (low - high)) ** config.rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


@torch.no_grad()
def heun_sample(model: nn.Module, num: int, dim: int, config: DiffusionConfig, generator: torch.Generator,
                device: torch.device | str = "cpu") -> Tensor:
    """EDM's stochastic sampler (Algorithm 2): Heun steps with churn in [s_tmin, s_tmax]. Returns [num, dim]."""
    sigmas = sampler_sigmas(config, device)
    gamma_max = min(config.s_churn / config.sample_steps, math.sqrt(2) - 1)
    x = torch.randn(num, dim, generator=generator, device=device) * sigmas[0]
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        gamma = gamma_max if config.s_tmin <= sigma <= config.s_tmax else 0.0
        sigma_hat = sigma * (1 + gamma)
        eps = torch.randn(x.shape, generator=generator, device=device) * config.s_noise
        x_hat = x + math.sqrt(max(sigma_hat**2 - sigma**2, 0.0)) * eps
        slope = (x_hat - _denoise_at(model, x_hat, sigma_hat, config)) / sigma_hat
        x = x_hat + (sigma_next - sigma_hat) * slope
        if sigma_next > 0:
            # second-order (Heun) correction; the last step to sigma = 0 stays Euler
            slope_next = (x - _denoise_at(model, x, sigma_next, config)) / sigma_next
            x = x_hat + 0.5 * (sigma_next - sigma_hat) * (slope + slope_next)
    return x


def _denoise_at(model: nn.Module, x: Tensor, sigma: float, config: DiffusionConfig) -> Tensor:
    return denoise(model, x, torch.full((len(x),), sigma, device=x.device), config.sigma_data)
