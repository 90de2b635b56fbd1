"""The offline agents (cases from the registry, see conftest.py): checkpoints that act identically after loading,
each algorithm refusing the wrong kind of action space, and TD targets that stop at terminal states."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trajlab.algos import load_agent, save_agent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import TDTargetProvider


def _far_from_identity(dataset):
    """Statistics far from the identity and an asymmetric action box, so a lost normaliser, reward scale or
    action scaling would show."""
    changed = dataclasses.replace(
        dataset, rewards=dataset.rewards * 50.0 + 3.0, observations=dataset.observations * 4.0 + 2.0,
        next_observations=dataset.next_observations * 4.0 + 2.0)
    if dataset.discrete:
        return changed
    return dataclasses.replace(changed, metadata={**dataset.metadata, "action_low": [-2.0, 0.0],
                                                  "action_high": [2.0, 1.0]})


def _trained_and_loaded(tmp_path, dataset, case):
    agent = case.factory(dataset.spec, normalize_observations=True)(3)
    agent.prepare(dataset)
    for index in range(4):
        agent.update(dataset.sample(16, np.random.default_rng(index)))
    loaded = load_agent(save_agent(tmp_path / "agent.safetensors", agent))
    assert loaded.reward_scale == agent.reward_scale and loaded.reward_shift == agent.reward_shift
    assert torch.equal(loaded.obs_normalizer.mean, agent.obs_normalizer.mean)
    assert torch.equal(loaded.obs_normalizer.std, agent.obs_normalizer.std)
    assert loaded.num_updates == 4
    return agent, loaded


def test_loaded_checkpoint_acts_identically(tmp_path, tiny_dataset, tiny_discrete_dataset, offline_case):
    dataset = _far_from_identity(tiny_discrete_dataset if offline_case.discrete else tiny_dataset)
    agent, loaded = _trained_and_loaded(tmp_path, dataset, offline_case)
    observations = dataset.observations[:32]
    greedy = agent.act(observations, True)
    assert np.array_equal(greedy, loaded.act(observations, True))
    torch.manual_seed(7)
    stochastic = agent.act(observations, False)
    torch.manual_seed(7)
    assert np.array_equal(stochastic, loaded.act(observations, False))
    if offline_case.discrete:
        assert greedy.dtype == np.int64 and ((stochastic >= 0) & (stochastic < 3)).all()
    else:
        low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
        assert ((stochastic >= low - 1e-6) & (stochastic <= high + 1e-6)).all()


def test_algorithms_refuse_the_other_kind_of_actions(tiny_dataset, tiny_discrete_dataset, offline_algo):
    if offline_algo.discrete:
        wrong, message = tiny_dataset, "discrete actions"
    else:
        wrong, message = tiny_discrete_dataset, "continuous actions"
    with pytest.raises(TrajlabError, match=message):
        offline_algo.factory(wrong.spec)(0)


def test_td_target_does_not_bootstrap_from_terminal_states(tiny_dataset, tiny_discrete_dataset, offline_algo):
    dataset = tiny_discrete_dataset if offline_algo.discrete else tiny_dataset
    agent = offline_algo.factory(dataset.spec)(0)
    if not isinstance(agent, TDTargetProvider):
        pytest.skip(f"{offline_algo.algo} has no TD target")
    agent.prepare(dataset)
    batch = agent.preprocess(dataset.sample(16, np.random.default_rng(0)))
    terminal = batch.replace(terminals=torch.ones_like(batch.terminals))
    assert torch.equal(agent.td_target(terminal), terminal.rewards)
    bootstrapped = agent.td_target(batch.replace(terminals=torch.zeros_like(batch.terminals)))
    assert bootstrapped.shape == (16,) and not torch.equal(bootstrapped, batch.rewards)
