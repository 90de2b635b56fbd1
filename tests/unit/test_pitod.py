"""PIToD influence pieces on hand-built cases: the influence formula, soft returns, group bookkeeping, the loss
self-influence, the choice of the amendment, and bad requests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import Tensor

from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.data.masks import GroupMasks
from trajlab.data.replay import ReplayBuffer
from trajlab.influence.pitod import (
    Estimate,
    EstimateConfig,
    best_removal,
    check_estimate_config,
    groups_in,
    influence,
    loss_self_influence,
    select_groups,
    soft_returns,
)

MASKS = GroupMasks(num_members=4, group_size=4, seed=3)


def _buffer(steps: int = 10, capacity: int = 20, masks: GroupMasks | None = MASKS) -> ReplayBuffer:
    buffer = ReplayBuffer(1, 1, capacity, group_masks=masks)
    for t in range(steps):
        buffer.add(np.array([t]), np.array([0.0]), 1.0, np.array([t + 1]), False, t % 3 == 2)
    return buffer


def test_influence_is_the_flipped_score_minus_the_all_member_score():
    assert influence(np.array([1.0, -2.0, 0.5]), 0.5).tolist() == [0.5, -2.5, 0.0]


def test_soft_returns_add_the_entropy_bonus_from_the_next_step_on():
    rewards, log_prob = np.array([1.0, 2.0, 3.0]), np.array([-1.0, -2.0, -3.0])
    gamma, alpha = 0.5, 0.1
    g2 = 3.0
    g1 = 2.0 + gamma * (g2 - alpha * -3.0)
    g0 = 1.0 + gamma * (g1 - alpha * -2.0)
    assert np.allclose(soft_returns(rewards, log_prob, gamma, alpha), [g0, g1, g2])


def test_groups_know_their_transition_and_episode_ranges_after_the_wrap():
    groups = groups_in(_buffer(steps=14, capacity=9))  # holds transitions 5..13
    assert [g.group for g in groups] == [1, 2, 3]
    assert [g.transition_ids for g in groups] == [(5, 7), (8, 11), (12, 13)]
    assert [g.episode_ids for g in groups] == [(1, 2), (2, 3), (4, 4)]
    assert [g.size for g in groups] == [3, 4, 2]
    assert all(np.array_equal(g.mask, MASKS.mask(g.group)) for g in groups)


def test_a_buffer_without_masks_and_unknown_groups_are_user_errors():
    with pytest.raises(TrajlabError, match="no turn-over dropout masks"):
        groups_in(_buffer(masks=None))
    with pytest.raises(TrajlabError, match="unknown group id"):
        select_groups(_buffer(), [0, 7])
    assert [g.group for g in select_groups(_buffer(), [2, 0])] == [2, 0]


@pytest.mark.parametrize("change", [{"n_eval": 0}, {"scores": ("return", "fun")}, {"scores": ()}])
def test_bad_estimate_settings_are_refused(change):
    with pytest.raises(TrajlabError):
        check_estimate_config(EstimateConfig(**change))


@dataclass
class _Losses(LossOutput):
    critic: Tensor
    actor: Tensor


class _MemberZeroAgent:
    """Its critic loss is 2 for a sample whose mask holds member 0, 1 with all members (masks None), 0 else;
    its actor loss is always 1."""

    def compute_losses(self, batch: Batch) -> _Losses:
        ones = torch.ones(len(batch))
        critic = ones if batch.masks is None else 2.0 * batch.masks[:, 0].float()
        return _Losses(critic=critic, actor=ones)


def test_loss_self_influence_is_the_share_of_samples_whose_loss_rises_under_the_flipped_mask():
    buffer = _buffer(steps=12)
    groups = groups_in(buffer)
    shares = loss_self_influence(_MemberZeroAgent(), buffer, groups, EstimateConfig(loss_samples=3),
                                 {"td": "critic", "policy": "actor"})
    expected = [0.0 if g.mask[0] else 1.0 for g in groups]  # flipped mask holds member 0 iff the group's does not
    assert shares["td"].tolist() == expected
    assert shares["policy"].tolist() == [0.0] * len(groups)


def test_the_best_removal_is_the_highest_return_or_the_lowest_bias_influence():
    groups = groups_in(_buffer(steps=12))
    found = Estimate(groups, {"return": 0.0, "bias": 0.5},
                     {"return": np.array([1.0, 5.0, -2.0]), "bias": np.array([0.1, 0.3, -0.2])})
    assert best_removal(found, "return").group == 1
    assert best_removal(found, "bias").group == 2
    assert found.ranked("return") == [1, 0, 2]
    with pytest.raises(TrajlabError, match="cannot amend by"):
        best_removal(found, "td")


def test_leave_one_out_trains_on_every_held_transition_but_the_groups():
    from trajlab.influence.loo import rows_without

    buffer = _buffer(steps=14, capacity=9)  # holds transitions 5..13: groups 1 (5-7), 2 (8-11), 3 (12-13)
    assert sorted(buffer.transition_ids[rows_without(buffer, 2)].tolist()) == [5, 6, 7, 12, 13]
    assert sorted(buffer.transition_ids[rows_without(buffer, None)].tolist()) == list(range(5, 14))
