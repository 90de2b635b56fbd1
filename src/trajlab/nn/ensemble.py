"""Vectorised ensembles: N independent MLPs computed as one batched matrix multiply per layer.

A critic ensemble (twin critics, SAC-N, EDAC, shadow agents) is one module whose weights have a leading
ensemble dimension, so N members cost one `baddbmm` per layer instead of a Python loop over N modules.
`EnsembleCritic` (continuous actions as an input) and `DiscreteEnsembleCritic` (one output per discrete action)
are called alike, critic(observations, actions) -> Q [N, B], so an algorithm can use either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from trajlab.nn.qlearning import action_values


class EnsembleLinear(nn.Module):
    """N linear layers in one: input [N, B, in] (or [B, in], shared by all members) -> [N, B, out]."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.num_members, self.in_dim, self.out_dim = num_members, in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the same initialisation as nn.Linear, member by member
        bound = 1.0 / math.sqrt(self.in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            # a shared input as a stride-0 batch: one fused baddbmm, about 2x faster than matmul + bias on CPU
            x = x.expand(self.num_members, -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_members(self, x: Tensor, members: slice) -> Tensor:
        """The layer of the selected members only ([B, in] or [M, B, in] -> [M, B, out]): no work for the rest."""
        weight, bias = self.weight[members], self.bias[members]
        if x.dim() == 2:
            x = x.expand(weight.shape[0], -1, -1)
        return torch.baddbmm(bias, x, weight)

    def extra_repr(self) -> str:
        return f"num_members={self.num_members}, in_dim={self.in_dim}, out_dim={self.out_dim}"


class EnsembleLayerNorm(nn.Module):
    """Layer norm with separate affine parameters per member ([N, B, D] inputs)."""

    def __init__(self, num_members: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.layer_norm(x, x.shape[-1:]) * self.weight + self.bias

    def forward_members(self, x: Tensor, members: slice) -> Tensor:
        return nn.functional.layer_norm(x, x.shape[-1:]) * self.weight[members] + self.bias[members]


class EnsembleMLP(nn.Module):
    """N MLPs of the same shape, vectorised: input [B, in] or [N, B, in] -> output [N, B, out]."""

    def __init__(
        self,
        num_members: int,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256),
        *,
        activation: type[nn.Module] = nn.ReLU,
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_members = num_members
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers.append(EnsembleLinear(num_members, width, size))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            if layer_norm:
                layers.append(EnsembleLayerNorm(num_members, size))
            layers.append(activation())
            width = size
        layers.append(EnsembleLinear(num_members, width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, members: slice | None = None) -> Tensor:
        """All members ([N, B, out]), or only `members` (a slice: [M, B, out]), e.g. slice(0, 1) when a loss
        uses the first critic alone (TD3's actor): the other members then cost nothing."""
        if members is None:
            return self.net(x)
        for layer in self.net:
            x = layer.forward_members(x, members) if hasattr(layer, "forward_members") else layer(x)
        return x


class EnsembleCritic(nn.Module):
    """Q(s, a) for N members at once: [B, obs], [B, act] (or [N, B, ...]) -> [N, B]."""

    def __init__(self, num_members: int, observation_dim: int, action_dim: int,
                 hidden: Sequence[int] = (256, 256), **mlp_options: object) -> None:
        super().__init__()
        self.num_members = num_members
        self.body = EnsembleMLP(num_members, observation_dim + action_dim, 1, hidden, **mlp_options)  # type: ignore[arg-type]

    def forward(self, observations: Tensor, actions: Tensor, members: slice | None = None) -> Tensor:
        """[N, B] (or [M, B] for a slice of `members`, see `EnsembleMLP.forward`)."""
        return self.body(torch.cat([observations, actions], dim=-1), members).squeeze(-1)

    def forward_chunked(self, observations: Tensor, actions: Tensor, rows_per_chunk: int = 1024) -> Tensor:
        """`forward` over chunks of about `rows_per_chunk` rows, on CPU only (same values, [N, rows]).

        For many rows per update (CQL: 31 actions x 256 states) one [N, 7936, 256] activation is 16 MB: fresh
        pages on every allocation and no cache reuse. Chunks of ~1k rows stay in cache and recycle freed memory
        (about 30% more CQL updates/s on a 2-core CPU); on GPUs one large batch is better and is kept.
        """
        rows = observations.shape[-2]
        if observations.device.type != "cpu" or rows <= rows_per_chunk:
            return self(observations, actions)
        chunks = math.ceil(rows / rows_per_chunk)
        pieces = zip(observations.chunk(chunks, dim=-2), actions.chunk(chunks, dim=-2))
        return torch.cat([self(obs, act) for obs, act in pieces], dim=-1)


class EnsembleValue(nn.Module):
    """V(s) (or Q(s, ·) over discrete actions when out_dim > 1) for N members: [B, obs] -> [N, B(, out)]."""

    def __init__(self, num_members: int, observation_dim: int, out_dim: int = 1,
                 hidden: Sequence[int] = (256, 256), **mlp_options: object) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.body = EnsembleMLP(num_members, observation_dim, out_dim, hidden, **mlp_options)  # type: ignore[arg-type]

    def forward(self, observations: Tensor) -> Tensor:
        out = self.body(observations)
        return out.squeeze(-1) if self.out_dim == 1 else out


class DiscreteEnsembleCritic(EnsembleValue):
    """Q(s, a) over discrete actions for N members: Q(s, ·) from one network per member, gathered at `actions`.

    Called as `EnsembleCritic` is: [B, obs] observations and [B] action indices -> [N, B]. Its weights are those of
    an `EnsembleValue(num_members, observation_dim, num_actions, hidden)`.
    """

    def __init__(self, num_members: int, observation_dim: int, num_actions: int,
                 hidden: Sequence[int] = (256, 256), **mlp_options: object) -> None:
        super().__init__(num_members, observation_dim, num_actions, hidden, **mlp_options)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:  # type: ignore[override]
        # .long(): auditors pass dataset actions as they are stored, which may be floats
        return action_values(self.all_actions(observations), actions.long())

    def all_actions(self, observations: Tensor) -> Tensor:
        """Q(s, ·) of every member and action [N, B, num_actions]."""
        return super().forward(observations)
