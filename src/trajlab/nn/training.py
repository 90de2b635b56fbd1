"""Training plumbing shared by agents: fused Adam, frozen target copies, Polyak averaging, learned scalars.

These run once or more per update, so they avoid per-call Python work: the target's parameter lists are taken
once and averaged with one `_foreach_lerp_`, and Adam is the fused single-kernel version where it exists.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn


def adam(parameters: Iterable[nn.Parameter], lr: float, *, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused kernel (about 3x faster than the per-parameter loop on CPU, also on CUDA)."""
    params = list(parameters)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` that no optimiser sees and no gradient reaches (a target network)."""
    return copy.deepcopy(module).requires_grad_(False)


class PolyakAverager:
    """target <- (1 - tau) * target + tau * source, over matching parameters, in one fused call."""

    def __init__(self, source: nn.Module, target: nn.Module) -> None:
        self.source = [p for p in source.parameters()]
        self.target = [p for p in target.parameters()]
        if [p.shape for p in self.source] != [p.shape for p in self.target]:
            raise ValueError("source and target networks differ in shape")

    @torch.no_grad()
    def update(self, tau: float) -> None:
        torch._foreach_lerp_(self.target, self.source, tau)


def step(optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], loss: Tensor,
         inputs: Sequence[Tensor] | None = None) -> None:
    """One step of one or several optimisers on `loss` (a sum of losses of disjoint parameters takes one
    backward pass). With `inputs`, gradients are computed for those tensors only: an actor loss that goes
    through a critic then costs no critic weight gradients and leaves the critic's .grad alone."""
    optimizers = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=list(inputs) if inputs is not None else None)
    for optimizer in optimizers:
        optimizer.step()


class LogScalar(nn.Module):
    """A positive learned scalar kept as its logarithm (SAC's entropy temperature, CQL's Lagrange multiplier);
    with `shape`, one such value per entry (a temperature per ensemble member)."""

    def __init__(self, initial: float, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.log_value = nn.Parameter(torch.full(shape, math.log(initial), dtype=torch.float32))

    def forward(self) -> Tensor:
        return self.log_value.exp()


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast of matmuls when `enabled` (about 2x faster matmuls on CPUs with AVX512-BF16 or AMX,
    and on GPUs); outputs keep ~3 significant digits. Disabled, it is a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
