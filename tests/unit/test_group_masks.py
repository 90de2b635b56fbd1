"""Group masks of turn-over dropout: K/2 ones per group, reproducible, stored with transitions in the replay
buffer through the ring wrap-around and a save/load round trip, and carried into batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajlab.core.errors import TrajlabError
from trajlab.data.masks import GroupMasks
from trajlab.data.replay import ReplayBuffer

MASKS = GroupMasks(num_members=6, group_size=3, seed=7)


def _filled(capacity: int, steps: int, masks: GroupMasks | None = MASKS) -> ReplayBuffer:
    buffer = ReplayBuffer(1, 1, capacity, group_masks=masks)
    for t in range(steps):
        buffer.add(np.array([t]), np.array([t]), float(t), np.array([t + 1]), False, t % 4 == 3)
    return buffer


def test_every_group_mask_has_half_ones_and_is_reproducible():
    masks = [MASKS.mask(group) for group in range(20)]
    assert all(mask.dtype == bool and mask.sum() == 3 for mask in masks)
    assert all(np.array_equal(mask, GroupMasks(6, 3, seed=7).mask(group)) for group, mask in enumerate(masks))
    assert len({mask.tobytes() for mask in masks}) > 5  # not one mask for all
    assert not all(np.array_equal(a, b) for a, b in zip(masks, (GroupMasks(6, 3, seed=8).mask(g) for g in range(20))))
    assert MASKS.group_of(np.array([0, 2, 3, 8, 9])).tolist() == [0, 0, 1, 2, 3]
    assert MASKS.transition_range(2) == (6, 9)


@pytest.mark.parametrize("members", [3, 0])
def test_an_odd_or_empty_ensemble_is_refused(members):
    with pytest.raises(TrajlabError, match="even number"):
        GroupMasks(members, 5)


def test_stored_masks_are_their_groups_through_the_wrap_around():
    buffer = _filled(capacity=5, steps=13)
    rows = np.arange(buffer.oldest_step, buffer.num_added) % buffer.capacity
    for row in rows:
        assert np.array_equal(buffer.masks[row], MASKS.mask(buffer.transition_ids[row] // 3))
    batch = buffer.sample(32, np.random.default_rng(0))
    expected = np.stack([MASKS.mask(i // 3) for i in batch.transition_ids.numpy()])
    assert batch.masks is not None and batch.masks.dtype == torch.bool
    assert np.array_equal(batch.masks.numpy(), expected)


def test_masks_and_their_settings_survive_save_and_load(tmp_path):
    buffer = _filled(capacity=5, steps=13)
    restored = ReplayBuffer(1, 1, 5)  # built without masks: the file says how they were made
    restored.load(buffer.save(tmp_path / "replay.npz"))
    assert restored.group_masks == MASKS
    assert np.array_equal(restored.masks, buffer.masks)
    restored.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), False, False)  # transition 13: group 4
    assert np.array_equal(restored.masks[13 % 5], MASKS.mask(4))


def test_loading_masks_made_otherwise_is_refused(tmp_path):
    path = _filled(capacity=5, steps=6).save(tmp_path / "replay.npz")
    with pytest.raises(TrajlabError, match="group masks"):
        ReplayBuffer(1, 1, 5, group_masks=GroupMasks(6, 4, seed=7)).load(path)


def test_a_buffer_without_masks_has_none_anywhere(tmp_path):
    buffer = _filled(capacity=5, steps=6, masks=None)
    assert buffer.masks is None and buffer.sample(4, np.random.default_rng(0)).masks is None
    assert "masks" not in buffer.state()
    masked = _filled(capacity=5, steps=6)
    masked.load(buffer.save(tmp_path / "plain.npz"))
    assert masked.masks is None and masked.group_masks is None
