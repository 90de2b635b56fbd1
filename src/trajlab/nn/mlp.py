"""Plain multi-layer perceptrons."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (256, 256),
    *,
    activation: type[nn.Module] = nn.ReLU,
    layer_norm: bool = False,
    dropout: float = 0.0,
    output_activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """Linear layers of widths `hidden` with `activation` between them (dropout and layer norm optional,
    applied before the activation as in DroQ)."""
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        if layer_norm:
            layers.append(nn.LayerNorm(size))
        layers.append(activation())
        width = size
    layers.append(nn.Linear(width, out_dim))
    if output_activation is not None:
        layers.append(output_activation())
    return nn.Sequential(*layers)
