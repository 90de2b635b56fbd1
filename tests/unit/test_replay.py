"""The replay buffer's optional per-step safety cost: stored, sampled, cut into datasets, saved and restored."""

from __future__ import annotations

import numpy as np
import torch

from trajlab.data.replay import ReplayBuffer


def _with_costs(capacity: int, steps: int) -> ReplayBuffer:
    """Transition t has observation [t], action [t], reward t and cost t / 10; episodes of 4 steps time out."""
    buffer = ReplayBuffer(1, 1, capacity)
    for t in range(steps):
        buffer.add(np.array([t]), np.array([t]), float(t), np.array([t + 1]), False, t % 4 == 3, cost=t / 10)
    return buffer


def test_without_costs_batches_and_datasets_have_none():
    buffer = ReplayBuffer(1, 1, 8)
    for t in range(5):
        buffer.add(np.array([t]), np.array([t]), float(t), np.array([t + 1]), False, False)
    assert buffer.costs is None
    assert buffer.sample(4, np.random.default_rng(0)).costs is None
    assert buffer.to_dataset().costs is None
    assert "costs" not in buffer.state()


def test_sampled_costs_belong_to_their_transitions():
    batch = _with_costs(capacity=20, steps=12).sample(64, np.random.default_rng(0))
    assert batch.costs is not None and batch.costs.dtype == torch.float32
    assert torch.equal(batch.costs, (batch.transition_ids.double() / 10).float())


def test_a_step_without_a_cost_after_costed_ones_costs_nothing():
    buffer = ReplayBuffer(1, 1, 8)
    buffer.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), False, False)
    buffer.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), False, False, cost=2.5)
    buffer.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), False, False)
    assert buffer.to_dataset().costs.tolist() == [0.0, 2.5, 0.0]


def test_costs_survive_the_ring_wrap_into_datasets():
    dataset = _with_costs(capacity=5, steps=8).to_dataset()
    assert dataset.transition_ids.tolist() == [3, 4, 5, 6, 7]
    assert dataset.costs.dtype == np.float32
    assert dataset.costs.tolist() == np.float32([0.3, 0.4, 0.5, 0.6, 0.7]).tolist()


def test_costs_round_trip_through_a_saved_buffer(tmp_path):
    buffer = _with_costs(capacity=6, steps=9)
    restored = ReplayBuffer(1, 1, 6)
    restored.load(buffer.save(tmp_path / "replay.npz"))
    assert np.array_equal(restored.costs, buffer.costs)
    plain = ReplayBuffer(1, 1, 6)
    plain.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), False, False)
    restored.load(plain.save(tmp_path / "plain.npz"))
    assert restored.costs is None  # the state it was given had none
