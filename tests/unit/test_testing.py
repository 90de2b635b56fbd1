"""trajlab.testing's own checks catch what they are meant to catch."""

from __future__ import annotations

import types

import pytest
import torch

from trajlab.testing import _check_gradient_layout


def _agent_with_gradient(gradient: torch.Tensor, *, fused: bool) -> types.SimpleNamespace:
    weight = torch.nn.Parameter(torch.zeros(3, 4))
    weight.grad = gradient
    return types.SimpleNamespace(optimizers={"critic": torch.optim.Adam([weight], lr=1e-3, fused=fused)})


def test_fused_optimizer_with_a_transposed_gradient_is_caught():
    transposed = torch.randn(4, 3).t()  # shape (3, 4), strides (1, 3)
    with pytest.raises(AssertionError, match="fused Adam would step the wrong weights"):
        _check_gradient_layout(_agent_with_gradient(transposed, fused=True))
    _check_gradient_layout(_agent_with_gradient(transposed.contiguous(), fused=True))
    _check_gradient_layout(_agent_with_gradient(transposed, fused=False))  # the per-tensor path copes


def test_transposed_gradient_really_misleads_the_fused_kernel():
    # why the check exists: same gradient values, different layout, different step
    torch.manual_seed(0)
    gradient = torch.randn(4, 3).t()
    steps = []
    for grad in (gradient, gradient.contiguous()):
        weight = torch.nn.Parameter(torch.zeros(3, 4))
        weight.grad = grad
        torch.optim.Adam([weight], lr=1.0, fused=True).step()
        steps.append(weight.detach().clone())
    assert torch.allclose(steps[1], -torch.sign(gradient), atol=1e-6)  # first Adam step: -lr * sign(g)
    assert not torch.equal(steps[0], steps[1])
