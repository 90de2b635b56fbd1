"""Masked (turn-over dropout) ensembles: K complete sub-MLPs whose outputs are averaged under a member mask.

PIToD (Hiraoka et al., RLC 2025) gives every group of experiences a mask m in {0, 1}^K with K/2 ones; a sample
trains only the members its mask selects, so the members outside it (the "flipped" mask 1 - m) form a model that
never saw the group. The output under m is sum_k m_k f_k(x) / sum_k m_k: an excluded member is multiplied by an
exact 0, so it receives exactly zero gradient from that sample. No mask means the average of all members.

The K sub-networks are one `EnsembleMLP` (weights [K, in, out], one batched product per layer), so K members cost
one `baddbmm` per layer rather than K modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from trajlab.nn.ensemble import EnsembleMLP
from trajlab.nn.policies import LOG_STD_MAX, LOG_STD_MIN, GaussianPolicy, TanhGaussianPolicy, squashed_log_prob
from trajlab.nn.policies import _gaussian_log_prob as gaussian_log_prob


def masked_mean(outputs: Tensor, mask: Tensor | None) -> Tensor:
    """Average of member outputs [..., K, B, D] over the members a mask selects -> [..., B, D].

    `mask` is None (all members), [K] (one mask for every sample) or [B, K] (a mask per sample), bool or 0/1.
    """
    if mask is None:
        return outputs.mean(dim=-3)
    check_mask(mask, outputs.shape[-3], outputs.shape[-2])
    weights = mask.to(outputs.dtype)
    weights = weights.unsqueeze(-1) if weights.dim() == 1 else weights.transpose(0, 1)  # -> [K, B] or [K, 1]
    total = (outputs * weights.unsqueeze(-1)).sum(dim=-3)
    count = weights.sum(dim=0).clamp_min(1.0).unsqueeze(-1)
    return total / count


def member_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-member values [..., K, B] averaged over each sample's mask ([B, K]; None: all members) -> [..., B]."""
    return masked_mean(values.unsqueeze(-1), mask).squeeze(-1)


def check_mask(mask: Tensor | None, num_members: int, batch_size: int) -> None:
    """Raise ValueError for a mask that does not fit K members and a batch (a mask selecting no member would
    silently average nothing)."""
    if mask is None:
        return
    if mask.shape not in ((num_members,), (batch_size, num_members)):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit {num_members} members and a batch of "
                         f"{batch_size}: expected [{num_members}] or [{batch_size}, {num_members}]")


class MaskedEnsembleMLP(nn.Module):
    """K sub-MLPs, [B, in] -> [B, out] averaged under a member mask; `members(x)` gives all of them [K, B, out]."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int, hidden: Sequence[int] = (128, 128), *,
                 layer_norm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_members = num_members
        self.body = EnsembleMLP(num_members, in_dim, out_dim, hidden, layer_norm=layer_norm, dropout=dropout)

    def members(self, x: Tensor) -> Tensor:
        """Every member's output [K, B, out]."""
        return self.body(x)

    def forward(self, x: Tensor, mask: Tensor | None = None, *, per_member: bool = False) -> Tensor:
        """[B, out] under `mask`, or with `per_member` every member's own output [K, B, out]."""
        members = self.members(x)
        return members if per_member else masked_mean(members, mask)


class MaskedEnsembleCritic(nn.Module):
    """`num_critics` Q-functions, each a masked ensemble of K sub-MLPs: ([B, obs], [B, act]) -> Q [num_critics, B].

    All num_critics x K sub-networks are one vectorised ensemble, so both Q's cost one batched product per layer;
    member c * K + k is sub-network k of critic c, and every critic uses the same mask.
    """

    def __init__(self, num_critics: int, num_members: int, observation_dim: int, action_dim: int,
                 hidden: Sequence[int] = (128, 128), *, layer_norm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_critics, self.num_members = num_critics, num_members
        self.body = EnsembleMLP(num_critics * num_members, observation_dim + action_dim, 1, hidden,
                                layer_norm=layer_norm, dropout=dropout)

    def members(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Every sub-network's Q [num_critics, K, B]; `actions` are [B, act] (the same for every member) or
        [K, B, act] (member k of every critic judges actions[k], e.g. its own policy member's action)."""
        if actions.dim() == 2:
            q = self.body(torch.cat([observations, actions], dim=-1))
        else:
            inputs = torch.cat([observations.expand(len(actions), -1, -1), actions], dim=-1)  # [K, B, in]
            inputs = inputs.unsqueeze(0).expand(self.num_critics, -1, -1, -1).flatten(0, 1)
            q = self.body(inputs)
        return q.squeeze(-1).reshape(self.num_critics, self.num_members, -1)

    def forward(self, observations: Tensor, actions: Tensor, mask: Tensor | None = None, *,
                per_member: bool = False) -> Tensor:
        """Q [num_critics, B] under `mask`, or with `per_member` every sub-network's Q [num_critics, K, B]."""
        members = self.members(observations, actions)
        if per_member:
            return members
        return masked_mean(members.unsqueeze(-1), mask).squeeze(-1)


class MaskedTanhGaussianPolicy(TanhGaussianPolicy):
    """SAC's tanh-Gaussian policy whose mean and log-std heads are masked ensembles of K sub-MLPs.

    Each sub-network outputs a mean and a log-std; under a mask both are averaged over the selected members (the
    log-std before clamping), then the policy samples and squashes as `TanhGaussianPolicy` does.
    """

    def __init__(self, num_members: int, observation_dim: int, action_dim: int, hidden: Sequence[int] = (128, 128),
                 *, layer_norm: bool = False) -> None:
        nn.Module.__init__(self)
        self.num_members = num_members
        self.body = MaskedEnsembleMLP(num_members, observation_dim, 2 * action_dim, hidden, layer_norm=layer_norm)

    def distribution_params(self, observations: Tensor, mask: Tensor | None = None,
                            per_member: bool = False) -> tuple[Tensor, Tensor]:
        mean, log_std = self.body(observations, mask, per_member=per_member).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, observations: Tensor, deterministic: bool = False,  # type: ignore[override]
                mask: Tensor | None = None, per_member: bool = False) -> tuple[Tensor, Tensor]:
        """(action, log_prob [B]) under `mask` (None: all members), sampled as `TanhGaussianPolicy` samples; with
        `per_member` every member samples as a policy of its own: (action [K, B, act], log_prob [K, B])."""
        mean, log_std = self.distribution_params(observations, mask, per_member)
        pre_tanh = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(pre_tanh), squashed_log_prob(pre_tanh, mean, log_std)

    def log_prob(self, observations: Tensor, actions: Tensor,  # type: ignore[override]
                 mask: Tensor | None = None) -> Tensor:
        """log pi(a|s) [B] of given actions in (-1, 1) under `mask`."""
        mean, log_std = self.distribution_params(observations, mask)
        pre_tanh = torch.atanh(actions.clamp(-1 + 1e-6, 1 - 1e-6))
        return squashed_log_prob(pre_tanh, mean, log_std)


class MaskedDeterministicPolicy(nn.Module):
    """a = tanh(mean of the selected members' outputs): TD3+BC's deterministic policy as a masked ensemble.

    The tanh comes after the masked average, so the policy under a mask is one tanh-squashed model, as
    `DeterministicPolicy` is.
    """

    def __init__(self, num_members: int, observation_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256),
                 *, layer_norm: bool = False) -> None:
        super().__init__()
        self.num_members = num_members
        self.body = MaskedEnsembleMLP(num_members, observation_dim, action_dim, hidden, layer_norm=layer_norm)

    def forward(self, observations: Tensor, mask: Tensor | None = None, *, per_member: bool = False) -> Tensor:
        """Actions [B, act] under `mask`, or with `per_member` every member's own [K, B, act]."""
        return torch.tanh(self.body(observations, mask, per_member=per_member))

    def act(self, observations: Tensor, deterministic: bool, mask: Tensor | None = None) -> Tensor:
        """The policy's action under `mask` (the same whether `deterministic` or not)."""
        return self(observations, mask)


class MaskedGaussianPolicy(GaussianPolicy):
    """IQL's N(tanh(mu(s)), exp(log_std)) as a masked ensemble: each member has its own mean head and its own
    state-independent log-std, both averaged under a mask (a shared log-std would be trained by every group)."""

    def __init__(self, num_members: int, observation_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256),
                 *, layer_norm: bool = False, log_std_min: float = -5.0, log_std_max: float = 2.0) -> None:
        nn.Module.__init__(self)
        self.num_members = num_members
        self.body = MaskedEnsembleMLP(num_members, observation_dim, action_dim, hidden, layer_norm=layer_norm)
        self.log_std = nn.Parameter(torch.zeros(num_members, action_dim))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def mean(self, observations: Tensor, mask: Tensor | None = None,  # type: ignore[override]
             per_member: bool = False) -> Tensor:
        return torch.tanh(self.body(observations, mask, per_member=per_member))

    def _log_std(self, batch_size: int, mask: Tensor | None, per_member: bool = False) -> Tensor:
        members = self.log_std.unsqueeze(1).expand(-1, batch_size, -1)  # [K, B, act]
        return (members if per_member else masked_mean(members, mask)).clamp(self.log_std_min, self.log_std_max)

    def forward(self, observations: Tensor, deterministic: bool = False,  # type: ignore[override]
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mean = self.mean(observations, mask)
        log_std = self._log_std(len(observations), mask)
        action = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        return action.clamp(-1.0, 1.0), gaussian_log_prob(action, mean, log_std)

    def act(self, observations: Tensor, deterministic: bool,  # type: ignore[override]
            mask: Tensor | None = None) -> Tensor:
        action, _ = self(observations, deterministic, mask)
        return action

    def log_prob(self, observations: Tensor, actions: Tensor,  # type: ignore[override]
                 mask: Tensor | None = None, per_member: bool = False) -> Tensor:
        """log pi(a|s) [B] under `mask`, or with `per_member` under every member's own policy [K, B]."""
        return gaussian_log_prob(actions, self.mean(observations, mask, per_member),
                                 self._log_std(len(observations), mask, per_member))
