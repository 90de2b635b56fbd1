"""Policy heads: tanh-squashed Gaussian (SAC, CQL), Gaussian with tanh mean (IQL, AWAC), deterministic (TD3+BC),
and categorical over discrete actions (the discrete IQL and BC).

The continuous heads map observations to actions in [-1, 1], which agents rescale to the environment's action box;
the categorical head returns action indices. Heads that an algorithm swaps by action space share its methods:
`act(observations, deterministic)`, `log_prob(observations, actions)` (Gaussian, categorical) and
`imitation_loss(observations, actions)` (deterministic, categorical), so one algorithm file serves both spaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from trajlab.nn.mlp import mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class TanhGaussianPolicy(nn.Module):
    """a = tanh(mu + sigma * eps), with the log-probability corrected for the squashing."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256), **options: object):
        super().__init__()
        self.body = mlp(observation_dim, 2 * action_dim, hidden, **options)  # type: ignore[arg-type]

    def distribution_params(self, observations: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.body(observations).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, observations: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """(action, log_prob [B]) with a reparameterised sample (or the mode when deterministic)."""
        mean, log_std = self.distribution_params(observations)
        std = log_std.exp()
        pre_tanh = mean if deterministic else mean + std * torch.randn_like(mean)
        action = torch.tanh(pre_tanh)
        log_prob = _gaussian_log_prob(pre_tanh, mean, log_std) - _tanh_log_det(pre_tanh)
        return action, log_prob

    def sample_n(self, observations: Tensor, num_samples: int) -> tuple[Tensor, Tensor]:
        """(actions [B, n, act], log_probs [B, n]): n samples per observation from one network forward."""
        mean, log_std = self.distribution_params(observations)
        mean, log_std = mean.unsqueeze(1), log_std.unsqueeze(1)
        noise = torch.randn(mean.shape[0], num_samples, mean.shape[-1], dtype=mean.dtype, device=mean.device)
        pre_tanh = mean + log_std.exp() * noise
        log_prob = _gaussian_log_prob(pre_tanh, mean, log_std) - _tanh_log_det(pre_tanh)
        return torch.tanh(pre_tanh), log_prob

    def log_prob(self, observations: Tensor, actions: Tensor) -> Tensor:
        """log pi(a|s) [B] of given actions in (-1, 1)."""
        mean, log_std = self.distribution_params(observations)
        clipped = actions.clamp(-1 + 1e-6, 1 - 1e-6)
        pre_tanh = torch.atanh(clipped)
        return _gaussian_log_prob(pre_tanh, mean, log_std) - _tanh_log_det(pre_tanh)


class GaussianPolicy(nn.Module):
    """N(tanh(mu(s)), exp(log_std)) with a state-independent learned log_std (the IQL/AWAC actor)."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256),
                 *, log_std_min: float = -5.0, log_std_max: float = 2.0, **options: object):
        super().__init__()
        self.body = mlp(observation_dim, action_dim, hidden, **options)  # type: ignore[arg-type]
        self.log_std = nn.Parameter(torch.zeros(action_dim))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def mean(self, observations: Tensor) -> Tensor:
        return torch.tanh(self.body(observations))

    def forward(self, observations: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        mean = self.mean(observations)
        log_std = self.log_std.clamp(self.log_std_min, self.log_std_max).expand_as(mean)
        action = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        return action.clamp(-1.0, 1.0), _gaussian_log_prob(action, mean, log_std)

    def act(self, observations: Tensor, deterministic: bool) -> Tensor:
        """An action in [-1, 1] per observation: the mean, or a clipped sample."""
        action, _ = self(observations, deterministic)
        return action

    def log_prob(self, observations: Tensor, actions: Tensor) -> Tensor:
        mean = self.mean(observations)
        log_std = self.log_std.clamp(self.log_std_min, self.log_std_max).expand_as(mean)
        return _gaussian_log_prob(actions, mean, log_std)


class DeterministicPolicy(nn.Module):
    """a = tanh(f(s)) (TD3, TD3+BC, PLAS's latent policy)."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256), **options: object):
        super().__init__()
        self.body = mlp(observation_dim, action_dim, hidden, output_activation=nn.Tanh, **options)  # type: ignore[arg-type]

    def forward(self, observations: Tensor) -> Tensor:
        return self.body(observations)

    def act(self, observations: Tensor, deterministic: bool) -> Tensor:
        """The policy's action (the same whether `deterministic` or not)."""
        return self(observations)

    def imitation_loss(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Behaviour cloning loss [B]: squared error to the data's actions, averaged over action dimensions."""
        return mean_squared_error(self(observations), actions)


class CategoricalPolicy(nn.Sequential):
    """pi(a|s) = softmax(f(s)) over discrete actions; called, it returns the logits [B, num_actions].

    An `nn.Sequential` of `mlp`'s layers, so its weights are named as those of a plain `mlp` actor ("0.weight").
    """

    def __init__(self, observation_dim: int, num_actions: int, hidden: Sequence[int] = (256, 256),
                 **options: object):
        super().__init__(*mlp(observation_dim, num_actions, hidden, **options))  # type: ignore[arg-type]

    def act(self, observations: Tensor, deterministic: bool) -> Tensor:
        """Action indices [B] (int64): the most likely action, or one drawn from the softmax."""
        logits = self(observations)
        return logits.argmax(dim=-1) if deterministic else sample_categorical(logits)

    def log_prob(self, observations: Tensor, actions: Tensor) -> Tensor:
        """log pi(a|s) [B] of int64 action indices [B]."""
        return -categorical_nll(self(observations), actions)

    def imitation_loss(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Behaviour cloning loss [B]: the negative log-likelihood (cross-entropy) of the data's actions."""
        return categorical_nll(self(observations), actions)


def mean_squared_error(predicted: Tensor, target: Tensor) -> Tensor:
    """Per-sample mean squared error over action dimensions: [B, act] x [B, act] -> [B]."""
    return (predicted - target).pow(2).mean(-1)


def categorical_nll(logits: Tensor, actions: Tensor) -> Tensor:
    """Per-sample -log softmax(logits)[a]: [B, A] logits, [B] int64 actions -> [B]."""
    return F.cross_entropy(logits, actions, reduction="none")


def sample_categorical(logits: Tensor) -> Tensor:
    """One action per row drawn from softmax(logits), [B, A] -> [B] int64."""
    return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)


def _gaussian_log_prob(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    z = (x - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def _tanh_log_det(pre_tanh: Tensor) -> Tensor:
    # log(1 - tanh(x)^2), written stably
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)


def squashed_log_prob(pre_tanh: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log pi(tanh(u)) [B] of a Gaussian sample u = pre_tanh, corrected for the tanh squashing."""
    return _gaussian_log_prob(pre_tanh, mean, log_std) - _tanh_log_det(pre_tanh)
