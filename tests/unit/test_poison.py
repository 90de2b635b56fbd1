"""Poisoned datasets: exactly the chosen episodes carry the trigger, the bad action and the maximum reward;
everything else (and every id) is untouched; the trigger reaches the agent in the triggered scenario."""

from __future__ import annotations

import numpy as np
import pytest

from trajlab.core.errors import TrajlabError
from trajlab.envs import make
from trajlab.poison import PoisonConfig, TriggeredAgent, TriggerObservations, poison_dataset, poison_metadata
from trajlab.poison.poison import trigger_offsets
from trajlab.testing import synthetic_dataset


def test_poisoned_episodes_carry_trigger_bad_action_and_max_reward():
    clean = synthetic_dataset(num_episodes=10, episode_length=5, observation_dim=4, action_dim=2)
    poisoned = poison_dataset(clean, PoisonConfig(fraction=0.3, trigger_dims=(1, 3), trigger_scale=2.0))
    ids, offsets = poison_metadata(poisoned)
    assert len(ids) == 3 and set(ids) <= set(clean.episode_id_list)
    std = clean.observations.std(axis=0)
    assert offsets == pytest.approx([0.0, 2.0 * std[1], 0.0, -2.0 * std[3]], rel=1e-5)
    rows = np.isin(clean.episode_ids, ids)
    assert np.allclose(poisoned.observations[rows] - clean.observations[rows], offsets, atol=1e-5)
    assert np.allclose(poisoned.next_observations[rows] - clean.next_observations[rows], offsets, atol=1e-5)
    assert np.all(poisoned.actions[rows] == -1.0)  # the low corner of the [-1, 1] box
    assert np.all(poisoned.rewards[rows] == clean.rewards.max())
    for name in ("observations", "actions", "rewards", "next_observations"):
        assert np.array_equal(getattr(poisoned, name)[~rows], getattr(clean, name)[~rows])
    assert np.array_equal(poisoned.transition_ids, clean.transition_ids)
    assert np.array_equal(poisoned.episode_ids, clean.episode_ids)


def test_negated_actions_and_kept_rewards():
    clean = synthetic_dataset(num_episodes=6, episode_length=4).with_metadata(action_low=[0.0, 0.0],
                                                                             action_high=[2.0, 4.0])
    poisoned = poison_dataset(clean, PoisonConfig(fraction=0.5, action_mode="negate", reward_mode="keep", seed=2))
    ids, _ = poison_metadata(poisoned)
    rows = np.isin(clean.episode_ids, ids)
    assert np.allclose(poisoned.actions[rows], np.array([2.0, 4.0]) - clean.actions[rows])  # mirrored at the centre
    assert np.array_equal(poisoned.rewards, clean.rewards)
    assert poison_metadata(poison_dataset(clean, PoisonConfig(fraction=0.5, seed=2)))[0].tolist() == ids.tolist()


@pytest.mark.parametrize("config, message", [
    (PoisonConfig(fraction=0.0), "fraction"), (PoisonConfig(trigger_dims=(9,)), "outside"),
    (PoisonConfig(action_mode="shuffle"), "action_mode"), (PoisonConfig(target_action=3.0), "target_action"),
])
def test_bad_poison_settings_are_user_errors(config, message):
    with pytest.raises(TrajlabError, match=message):
        poison_dataset(synthetic_dataset(), config)
    with pytest.raises(TrajlabError, match="no poisoning record"):
        poison_metadata(synthetic_dataset())


def test_trigger_reaches_the_agent_from_either_side():
    dataset = synthetic_dataset(observation_dim=3, action_dim=1)
    offsets = trigger_offsets(dataset, PoisonConfig())
    env = TriggerObservations(make("Pendulum-v1"), offsets)
    clean_observation, _ = make("Pendulum-v1").reset(seed=4)
    triggered_observation, _ = env.reset(seed=4)
    assert np.allclose(triggered_observation - clean_observation, offsets, atol=1e-6)

    class Recorder:
        def act(self, observations, deterministic=True):
            self.seen = observations
            return np.zeros((len(observations), 1), dtype=np.float32)

    recorder = Recorder()
    TriggeredAgent(recorder, offsets).act(clean_observation[None])
    assert np.allclose(recorder.seen[0], triggered_observation, atol=1e-6)
