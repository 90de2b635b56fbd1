"""Masked (turn-over dropout) ensembles: the masked average, zero gradient to excluded members, and the flipped
model being the model trained without the group; the masked SAC's losses under per-sample masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajlab.algos.base import load_agent, new_agent, save_agent
from trajlab.algos.online.masked_sac import MaskedSAC, MaskedSACConfig
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch
from trajlab.core.spec import SpaceSpec
from trajlab.nn.masked import MaskedEnsembleMLP, check_mask, masked_mean


def _constant_members(values: list[float]) -> MaskedEnsembleMLP:
    """An ensemble whose member k outputs values[k] whatever the input (zero last-layer weights)."""
    ensemble = MaskedEnsembleMLP(len(values), 2, 1, (3,))
    last = ensemble.body.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(values).view(-1, 1, 1))
    return ensemble


def test_output_is_the_average_of_the_selected_members():
    ensemble = _constant_members([1.0, 2.0, 4.0, 8.0])
    x = torch.randn(3, 2)
    assert torch.allclose(ensemble(x), torch.full((3, 1), 15 / 4))
    assert torch.allclose(ensemble(x, torch.tensor([True, False, True, False])), torch.full((3, 1), 5 / 2))
    per_sample = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1], [0, 1, 1, 1]], dtype=torch.bool)
    assert torch.allclose(ensemble(x, per_sample).squeeze(-1), torch.tensor([3 / 2, 8.0, 14 / 3]))


def test_masked_mean_accepts_leading_dimensions():
    outputs = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3, 1)  # [critics, K, B, 1]
    mask = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    result = masked_mean(outputs, mask).squeeze(-1)
    expected = torch.stack([torch.stack([outputs[c, mask[b], b, 0].mean() for b in range(3)]) for c in range(2)])
    assert torch.allclose(result, expected)


def test_a_mask_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        check_mask(torch.ones(3, 5, dtype=torch.bool), 4, 3)


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad for p in module.parameters()]


def test_excluded_members_get_exactly_zero_gradient_from_a_sample():
    torch.manual_seed(0)
    ensemble = MaskedEnsembleMLP(6, 3, 2, (8, 8), layer_norm=True)
    x = torch.randn(4, 3)
    masks = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]],
                         dtype=torch.bool)
    for sample in range(4):
        ensemble.zero_grad()
        ensemble(x, masks)[sample].pow(2).sum().backward()
        for grad in _grads(ensemble):  # every parameter is [K, ...]
            assert torch.all(grad[~masks[sample]] == 0)
            assert torch.all(grad[masks[sample]].flatten(1).abs().sum(1) > 0)


def test_the_flipped_model_is_the_model_trained_without_the_group():
    """Trained on groups A and B (sum loss, Adam), the members outside A's mask equal those of the same
    initial model trained on B alone: Adam is elementwise and A sends them exactly zero gradient. (Exact where
    B's mask is A's flipped one: with overlapping masks B's gradient to a flipped member depends on the shared
    members, which A moved.)"""
    torch.manual_seed(1)
    members, x_a, x_b = 4, torch.randn(8, 3), torch.randn(8, 3)
    mask_a, mask_b = torch.tensor([1, 1, 0, 0], dtype=torch.bool), torch.tensor([0, 0, 1, 1], dtype=torch.bool)
    both = MaskedEnsembleMLP(members, 3, 1, (8,), layer_norm=True)
    only_b = MaskedEnsembleMLP(members, 3, 1, (8,), layer_norm=True)
    only_b.load_state_dict(both.state_dict())
    x_ab = torch.cat([x_a, x_b])
    masks_ab = torch.cat([mask_a.expand(8, -1), mask_b.expand(8, -1)])
    for model, x, masks in ((both, x_ab, masks_ab), (only_b, x_b, mask_b.expand(8, -1))):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(50):
            optimizer.zero_grad()
            (model(x, masks).squeeze(-1) - x.sum(-1)).pow(2).sum().backward()
            optimizer.step()
    probe = torch.randn(16, 3)
    assert torch.allclose(both(probe, ~mask_a), only_b(probe, ~mask_a), atol=1e-5)
    assert not torch.allclose(both(probe, mask_a), only_b(probe, mask_a), atol=1e-3)  # A's own members moved


# --- masked SAC -----------------------------------------------------------------------------------------------
SPEC = SpaceSpec(3, 2, False, (-1.0, -1.0), (1.0, 1.0))
TINY = MaskedSACConfig(hidden=(8, 8), batch_size=4, ensemble_size=4, group_size=2)


def _batch(masks: torch.Tensor | None) -> Batch:
    generator = torch.Generator().manual_seed(0)
    size = 4 if masks is None else len(masks)
    return Batch(observations=torch.randn(size, 3, generator=generator),
                 actions=torch.rand(size, 2, generator=generator) * 2 - 1,
                 rewards=torch.randn(size, generator=generator),
                 next_observations=torch.randn(size, 3, generator=generator), terminals=torch.zeros(size),
                 transition_ids=torch.arange(size), episode_ids=torch.zeros(size, dtype=torch.long), masks=masks)


def test_masked_sac_losses_send_no_gradient_to_members_outside_each_samples_mask():
    agent = new_agent(MaskedSAC, SPEC, TINY, seed=0)
    masks = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    losses = agent.compute_losses(_batch(masks))
    (losses.critic.sum() + losses.actor.sum()).backward()
    for module in (agent.critic, agent.actor):
        for grad in _grads(module):
            members = grad.reshape(-1, 4, *grad.shape[1:]) if module is agent.critic else grad.unsqueeze(0)
            assert torch.all(members[:, 2:] == 0) and members[:, :2].abs().sum() > 0


def test_masked_sac_uses_the_mask_in_the_td_target():
    agent = new_agent(MaskedSAC, SPEC, TINY, seed=0)
    one = torch.tensor([[1, 1, 0, 0]] * 4, dtype=torch.bool)
    other = ~one
    torch.manual_seed(3)
    target_one = agent.td_target(_batch(one))
    torch.manual_seed(3)
    target_other = agent.td_target(_batch(other))
    assert not torch.allclose(target_one, target_other)


def test_the_deploy_mask_is_saved_and_used_for_acting(tmp_path):
    agent = new_agent(MaskedSAC, SPEC, TINY, seed=0)
    observations = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    everyone = agent.act(observations)
    agent.set_deploy_mask(np.array([False, True, False, True]))
    masked = agent.act(observations)
    assert not np.allclose(everyone, masked)
    assert np.allclose(masked, agent.act_masked(observations, np.tile([False, True, False, True], (5, 1))))
    restored = load_agent(save_agent(tmp_path / "amended.safetensors", agent))
    assert np.array_equal(restored.act(observations), masked)


# --- independent members: a group never reaches its flipped half ----------------------------------------------
def _planted_stream(planted_scale: float) -> list[Batch]:
    """Ten batches of two groups (mask A = members 0 and 2, mask B = 0 and 1 of four, overlapping in member 0);
    group A's rewards scaled by `planted_scale`."""
    generator = torch.Generator().manual_seed(5)
    mask_a, mask_b = torch.tensor([1, 0, 1, 0], dtype=torch.bool), torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    masks = torch.cat([mask_a.expand(4, -1), mask_b.expand(4, -1)])
    batches = []
    for _ in range(10):
        rewards = torch.randn(8, generator=generator)
        rewards[:4] *= planted_scale
        batches.append(Batch(observations=torch.randn(8, 3, generator=generator),
                             actions=torch.rand(8, 2, generator=generator) * 2 - 1, rewards=rewards,
                             next_observations=torch.randn(8, 3, generator=generator), terminals=torch.zeros(8),
                             transition_ids=torch.arange(8), episode_ids=torch.zeros(8, dtype=torch.long),
                             masks=masks))
    return batches


def _members(coupling: str, planted_scale: float, members: list[int]) -> list[torch.Tensor]:
    """Every parameter of `members` after training on the planted stream."""
    config = MaskedSACConfig(hidden=(8, 8), batch_size=8, ensemble_size=4, group_size=4,
                             member_coupling=coupling, actor_every=1)
    torch.manual_seed(0)
    agent = new_agent(MaskedSAC, SPEC, config, seed=0)
    for batch in _planted_stream(planted_scale):
        agent.update(batch)
    outside = torch.tensor(members)
    critic_rows = torch.cat([outside, outside + 4])  # member c * K + k of critic c
    params = [p.detach()[critic_rows] for p in agent.critic.parameters()]
    params += [p.detach()[critic_rows] for p in agent.critic_target.parameters()]
    params += [p.detach()[outside] for p in agent.actor.parameters()]
    return [*params, agent.log_alpha.detach().reshape(-1)[outside] if coupling == "independent" else agent.alpha]


def test_independent_members_outside_a_group_are_bit_identical_whatever_the_group_held():
    outside_a, inside_a = [1, 3], [0, 2]
    clean, planted = _members("independent", 1.0, outside_a), _members("independent", -100.0, outside_a)
    assert all(torch.equal(a, b) for a, b in zip(clean, planted))
    clean, planted = _members("independent", 1.0, inside_a), _members("independent", -100.0, inside_a)
    assert not any(torch.equal(a, b) for a, b in zip(clean, planted))


def test_with_the_papers_coupling_a_planted_group_reaches_its_flipped_half():
    """The contrast: through the masked means of group B (which shares member 0 with A) and the shared
    temperature, the members that never trained on A still move when A's rewards change."""
    clean, planted = _members("mean", 1.0, [1, 3]), _members("mean", -100.0, [1, 3])
    assert not all(torch.equal(a, b) for a, b in zip(clean, planted))


def test_independent_members_train_through_the_agents_own_losses_and_reductions():
    config = MaskedSACConfig(hidden=(8, 8), batch_size=4, ensemble_size=4, group_size=2,
                             member_coupling="independent")
    agent = new_agent(MaskedSAC, SPEC, config, seed=0)
    masks = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    losses = agent.compute_losses(_batch(masks))
    assert losses.critic.shape == losses.actor.shape == losses.alpha.shape == (2,)
    (losses.critic.sum() + losses.actor.sum() + losses.alpha.sum()).backward()
    assert agent.log_alpha.shape == (4, 1)
    assert torch.all(agent.log_alpha.grad[2:] == 0) and agent.log_alpha.grad[:2].abs().sum() > 0
    for module in (agent.critic, agent.actor):
        for grad in _grads(module):
            members = grad.reshape(-1, 4, *grad.shape[1:]) if module is agent.critic else grad.unsqueeze(0)
            assert torch.all(members[:, 2:] == 0) and members[:, :2].abs().sum() > 0


def test_an_unknown_member_coupling_is_refused():
    with pytest.raises(TrajlabError, match="member_coupling"):
        MaskedSACConfig(hidden=(8,), ensemble_size=4, member_coupling="shared")
