"""EnsembleCritic/EnsembleMLP on a subset of members: the same values as the full ensemble, sliced."""

import torch

from trajlab.nn.ensemble import EnsembleCritic, EnsembleMLP


def test_member_subset_equals_slice_of_full_ensemble() -> None:
    torch.manual_seed(0)
    critic = EnsembleCritic(3, 5, 2, (16, 8), layer_norm=True)
    observations, actions = torch.randn(7, 5), torch.randn(7, 2)
    full = critic(observations, actions)
    assert torch.equal(critic(observations, actions, members=slice(0, 1)), full[0:1])
    torch.testing.assert_close(critic(observations, actions, members=slice(1, 3)), full[1:3])


def test_member_subset_accepts_per_member_inputs_and_leaves_other_members_without_gradient() -> None:
    torch.manual_seed(0)
    mlp = EnsembleMLP(2, 4, 1, (8,))
    inputs = torch.randn(1, 6, 4)
    mlp(inputs, members=slice(1, 2)).sum().backward()
    first_layer = mlp.net[0]
    assert first_layer.weight.grad is not None
    assert torch.count_nonzero(first_layer.weight.grad[0]) == 0
    assert torch.count_nonzero(first_layer.weight.grad[1]) > 0


def test_chunked_forward_equals_one_batch() -> None:
    torch.manual_seed(0)
    critic = EnsembleCritic(2, 5, 2, (16, 16))
    observations, actions = torch.randn(1000, 5), torch.randn(1000, 2)
    chunked = critic.forward_chunked(observations, actions, rows_per_chunk=128)
    torch.testing.assert_close(chunked, critic(observations, actions))
    per_member = torch.randn(2, 300, 5), torch.randn(2, 300, 2)
    torch.testing.assert_close(critic.forward_chunked(*per_member, rows_per_chunk=64), critic(*per_member))
