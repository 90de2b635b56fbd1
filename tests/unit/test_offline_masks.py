"""Turn-over dropout on offline datasets: episode-group masks, the sampler carrying them, the masked offline
agents' zero gradients outside a group's members, and the offline influence estimate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trajlab.algos.base import AGENTS, new_agent
from trajlab.core.config import replace
from trajlab.core.errors import TrajlabError
from trajlab.data.masks import GroupMasks
from trajlab.influence.offline import episode_groups, estimate_offline, offline_scores, select_episode_groups
from trajlab.influence.pitod import EstimateConfig
from trajlab.testing import synthetic_dataset
from trajlab.training.offline import prepare_training
from trajlab.training.steps import dataset_masks

MASKED = ("masked_td3_bc", "masked_iql")


def masked_agent(algo: str, dataset, *, group_size: int = 2, members: int = 4, seed: int = 0, **options):
    config = replace(AGENTS.get(algo).config_class(), actor_hidden=(16,), critic_hidden=(16,), batch_size=16,
                     ensemble_size=members, group_size=group_size, **options)
    agent, sampler = prepare_training(AGENTS.get(algo), config, dataset, seed=seed)
    return agent, sampler


def test_episode_masks_have_half_the_members_and_follow_the_episode_group():
    masks = GroupMasks(6, 2, seed=3)
    rows = masks.masks_of(np.array([0, 1, 2, 3, 3, 5]))
    assert rows.shape == (6, 6) and (rows.sum(axis=1) == 3).all()
    assert (rows[0] == rows[1]).all() and (rows[2] == rows[3]).all() and (rows[3] == masks.mask(1)).all()
    assert (rows[5] == masks.mask(2)).all()


def test_masks_survive_filtering_the_dataset():
    dataset = synthetic_dataset(num_episodes=8, episode_length=5)
    agent, _ = masked_agent("masked_td3_bc", dataset, group_size=3)
    full = dataset_masks(agent, dataset)
    filtered = dataset.without([0, 4])  # shifts every later row; the masks must stay with the episodes
    kept = ~np.isin(dataset.episode_ids, [0, 4])
    np.testing.assert_array_equal(dataset_masks(agent, filtered), full[kept])
    groups = {group.group: group.episodes for group in episode_groups(filtered, agent.episode_group_masks)}
    assert groups == {0: (1, 2), 1: (3, 5), 2: (6, 7)}


def test_the_sampler_carries_masks_without_changing_its_draws():
    dataset = synthetic_dataset(num_episodes=4, episode_length=5)
    masks = GroupMasks(4, 1).masks_of(dataset.episode_ids)
    plain = dataset.sampler(seed=7).sample(32)
    masked = dataset.sampler(seed=7, masks=masks).sample(32)
    assert plain.masks is None
    assert torch.equal(plain.transition_ids, masked.transition_ids)
    np.testing.assert_array_equal(masked.masks.numpy(), masks[masked.transition_ids.numpy()])
    with pytest.raises(ValueError, match="do not fit"):
        dataset.sampler(masks=masks[:-1])


def test_plain_agents_get_no_masks():
    dataset = synthetic_dataset(num_episodes=4, episode_length=5)
    config = replace(AGENTS.get("td3_bc").config_class(), actor_hidden=(16,), critic_hidden=(16,))
    _, sampler = prepare_training(AGENTS.get("td3_bc"), config, dataset, seed=0)
    assert sampler.sample(8).masks is None


def _member_grads(agent, batch, term_names) -> dict[str, torch.Tensor]:
    """Gradient norm per member [members] of every ensemble parameter, from the summed loss terms."""
    agent.train_mode(True)
    for parameter in agent.parameters():
        parameter.grad = None
    losses = agent.compute_losses(batch).terms()
    sum(losses[name].sum() for name in term_names).backward()
    norms = {}
    for network in ("actor", "critic", "value"):
        if network in agent.networks:
            for name, parameter in agent.networks[network].named_parameters():
                if parameter.grad is not None:
                    norms[f"{network}.{name}"] = parameter.grad.reshape(len(parameter), -1).abs().sum(dim=1)
    return norms


@pytest.mark.parametrize("algo", MASKED)
def test_excluded_members_get_zero_gradient_from_a_group(algo):
    dataset = synthetic_dataset(num_episodes=6, episode_length=8)
    agent, sampler = masked_agent(algo, dataset, group_size=2, members=4)
    rows = torch.as_tensor(np.flatnonzero(np.isin(dataset.episode_ids, [2, 3])))  # group 1 only
    batch = sampler.batch_at(rows)
    mask = agent.episode_group_masks.mask(1)
    terms = ("critic", "actor", "value") if algo == "masked_iql" else ("critic", "actor")
    norms = _member_grads(agent, batch, terms)
    assert any(name.startswith("actor") for name in norms) and any(name.startswith("critic") for name in norms)
    for name, per_member in norms.items():
        member_mask = np.tile(mask, len(per_member) // len(mask))  # critics: member c * K + k
        assert (per_member[torch.as_tensor(~member_mask)] == 0).all(), f"{name}: an excluded member moved"
        assert (per_member[torch.as_tensor(member_mask)] > 0).any(), f"{name}: no included member moved"


@pytest.mark.parametrize("algo", MASKED)
def test_default_offline_agents_are_unchanged_by_the_hooks(algo):
    plain = algo.removeprefix("masked_")
    dataset = synthetic_dataset(num_episodes=3, episode_length=5)
    agent = new_agent(AGENTS.get(plain), dataset.spec, AGENTS.get(plain).config_class(), seed=0)
    assert agent._member_mask(dataset.batch_at(np.arange(4))) == {}
    assert not hasattr(agent, "episode_group_masks")


def test_offline_estimate_scores_every_episode_group_on_its_own_losses():
    dataset = synthetic_dataset(num_episodes=6, episode_length=8)
    agent, sampler = masked_agent("masked_td3_bc", dataset, group_size=2, members=4)
    for _ in range(20):
        agent.update(sampler.sample(16))
    found = estimate_offline(agent, dataset, None, EstimateConfig(loss_samples=5), ("td", "policy"))
    assert [group.episodes for group in found.groups] == [(0, 1), (2, 3), (4, 5)]
    assert set(found.influence) == {"td", "policy"} and found.base == {}
    for values in found.influence.values():
        assert values.shape == (3,) and ((values >= 0) & (values <= 1)).all()
    again = estimate_offline(agent, dataset, None, EstimateConfig(loss_samples=5), ("td", "policy"))
    np.testing.assert_array_equal(found.influence["td"], again.influence["td"])  # seeded


def test_offline_scores_refuse_what_an_offline_run_cannot_give():
    settings = EstimateConfig()
    assert offline_scores(settings, None, explicit=False) == ("td", "policy")
    assert offline_scores(settings, "Pendulum-v1", explicit=False) == ("return", "td", "policy")
    with pytest.raises(TrajlabError, match="no Q bias"):
        offline_scores(replace(settings, scores=("bias",)), "Pendulum-v1", explicit=True)
    with pytest.raises(TrajlabError, match="names no known environment"):
        offline_scores(replace(settings, scores=("return",)), None, explicit=True)


def test_one_group_or_an_unknown_group_is_a_user_error():
    dataset = synthetic_dataset(num_episodes=4, episode_length=5)
    with pytest.raises(TrajlabError, match="one group"):
        select_episode_groups(dataset, GroupMasks(4, 4))
    with pytest.raises(TrajlabError, match="unknown group"):
        select_episode_groups(dataset, GroupMasks(4, 2), [5])


def test_training_further_keeps_each_group_on_its_members():
    from trajlab.training.steps import sampler_for

    dataset = synthetic_dataset(num_episodes=6, episode_length=5)
    agent, _ = masked_agent("masked_iql", dataset, group_size=2)
    remaining = dataset.without([2])
    batch = sampler_for(agent, remaining, 0, "finetune").sample(16)
    expected = agent.episode_group_masks.masks_of(batch.episode_ids.numpy())
    np.testing.assert_array_equal(batch.masks.numpy(), expected)


def _group_members(algo: str, coupling: str, planted_scale: float, *, inside: bool) -> list[torch.Tensor]:
    """Every parameter row of the members inside (or outside) group 1's mask, after 30 updates on a fixed batch
    stream in which group 1's rewards are scaled by `planted_scale`."""
    dataset = synthetic_dataset(num_episodes=6, episode_length=8)
    agent, sampler = masked_agent(algo, dataset, group_size=2, members=4, member_coupling=coupling)
    torch.manual_seed(0)
    for _ in range(30):
        batch = sampler.sample(16)
        planted = torch.as_tensor(np.isin(batch.episode_ids.numpy(), [2, 3]))  # group 1
        agent.update(dataclasses.replace(batch, rewards=torch.where(planted, batch.rewards * planted_scale,
                                                                    batch.rewards)))
    mask = agent.episode_group_masks.mask(1)
    rows = torch.as_tensor(mask if inside else ~mask)
    return [parameter.detach()[rows.repeat(len(parameter) // len(rows))]
            for module in agent.networks.values() for parameter in module.parameters()]


@pytest.mark.parametrize("algo", MASKED)
def test_independent_members_outside_a_group_are_bit_identical_whatever_the_group_held(algo):
    clean, planted = (_group_members(algo, "independent", scale, inside=False) for scale in (1.0, -100.0))
    assert all(torch.equal(a, b) for a, b in zip(clean, planted))
    clean, planted = (_group_members(algo, "independent", scale, inside=True) for scale in (1.0, -100.0))
    assert not all(torch.equal(a, b) for a, b in zip(clean, planted))  # the group's own members did learn it
    clean, planted = (_group_members(algo, "mean", scale, inside=False) for scale in (1.0, -100.0))
    assert not all(torch.equal(a, b) for a, b in zip(clean, planted))  # the paper's coupling: the plant leaks


def test_an_unknown_member_coupling_is_refused():
    with pytest.raises(TrajlabError, match="member_coupling must be one of mean, independent"):
        replace(AGENTS.get("masked_iql").config_class(), member_coupling="shared")
