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
    flipped_influence,
    groups_in,
    influence,
    loss_self_influence,
    scored_masks,
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


@pytest.mark.parametrize("change", [{"n_eval": 0}, {"scores": ("return", "fun")}, {"scores": ()},
                                    {"baseline": "none"}])
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


def test_the_all_member_baseline_scores_every_flipped_mask_against_all_members():
    groups = groups_in(_buffer(steps=8))
    masks = scored_masks(groups, 4, "all")
    assert masks.tolist() == [[True] * 4, *[(~g.mask).tolist() for g in groups]]
    scores = np.array([10.0, 12.0, 7.0])  # all members, then each group's flipped mask
    assert flipped_influence(scores, 2, "all").tolist() == [2.0, -3.0]


def test_the_own_mask_baseline_scores_every_flipped_mask_against_its_groups_own_mask():
    groups = groups_in(_buffer(steps=8))
    masks = scored_masks(groups, 4, "own")
    assert masks.tolist() == [[True] * 4, *[(~g.mask).tolist() for g in groups], *[g.mask.tolist() for g in groups]]
    scores = np.array([10.0, 12.0, 7.0, 11.0, 9.0])  # all, flipped of groups 0 and 1, own of groups 0 and 1
    assert flipped_influence(scores, 2, "own").tolist() == [1.0, -2.0]


def test_leave_one_out_repeats_average_influences_each_against_its_own_reference():
    from trajlab.influence.loo import LooResult, repeat_seed

    found = LooResult([0, 1, 2], np.array([10.0, 20.0]), np.array([[11.0, 9.0, 13.0], [22.0, 18.0, 23.0]]))
    assert found.repeat_influence.tolist() == [[1.0, -1.0, 3.0], [2.0, -2.0, 3.0]]
    assert found.influence.tolist() == [1.5, -1.5, 3.0]
    assert found.reference_return == 15.0 and found.returns.tolist() == [16.5, 13.5, 18.0]
    assert found.repeat_agreement() == pytest.approx(1.0)
    swapped = LooResult([0, 1, 2], np.array([0.0, 0.0]), np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    assert swapped.repeat_agreement() == pytest.approx(-1.0)
    assert LooResult([0, 1], np.array([0.0]), np.array([[1.0, 2.0]])).repeat_agreement() is None
    assert repeat_seed(7, 0) == 7 and repeat_seed(7, 1) != repeat_seed(7, 2) != 7


def test_the_bias_score_is_the_same_for_the_same_seed_and_leaves_the_callers_random_state():
    from trajlab.algos.online.masked_sac import MaskedSAC, MaskedSACConfig
    from trajlab.core.spec import SpaceSpec
    from trajlab.influence.pitod import bias_scores

    agent = MaskedSAC(SpaceSpec(3, 1, False, (-2.0,), (2.0,)),
                      MaskedSACConfig(hidden=(8, 8), batch_size=4, ensemble_size=4, group_size=2), seed=0)
    masks = np.array([[True] * 4, [True, True, False, False]])
    config = EstimateConfig(max_steps=20, bias_pairs=20, seed=5)
    torch.manual_seed(1)
    first = bias_scores(agent, "Pendulum-v1", masks, config)
    after_first = torch.rand(1)
    torch.manual_seed(2)  # another caller state: the estimate must not depend on it
    second = bias_scores(agent, "Pendulum-v1", masks, config)
    torch.manual_seed(1)
    assert np.array_equal(first, second)
    assert torch.equal(torch.rand(1), after_first)  # the estimate drew nothing from the caller's stream
