"""check_agent over BCQ, BEAR, PLAS-P and the discrete offline algorithms, with tiny networks; checkpoints that act
identically after loading; and each algorithm refusing the wrong kind of action space.

To cover another configuration, add a line to CONTINUOUS_CASES or DISCRETE_CASES: (case id, algorithm, overrides).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS, load_agent, save_agent
from trajlab.core.config import replace
from trajlab.core.errors import TrajlabError
from trajlab.testing import check_agent

CONTINUOUS_CASES = [
    ("bcq", "bcq", {}),
    ("bear", "bear", {"warmup_steps": 2}),
    ("bear-gaussian-fixed-alpha", "bear", {"warmup_steps": 0, "mmd_kernel": "gaussian", "auto_alpha": False}),
    ("plas", "plas", {"vae_pretrain_steps": 2}),
    ("bcq-bf16", "bcq", {"bf16": True}),
    ("bear-bf16", "bear", {"warmup_steps": 2, "bf16": True}),
    ("plas-bf16", "plas", {"vae_pretrain_steps": 2, "bf16": True}),
]
DISCRETE_CASES = [
    ("discrete_bc", "discrete_bc", {}),
    ("discrete_bcq", "discrete_bcq", {}),
    ("discrete_bcq-unfiltered", "discrete_bcq", {"threshold": 0.0}),
    ("discrete_cql", "discrete_cql", {}),
    ("discrete_cql-dqn", "discrete_cql", {"double_dqn": False}),
    ("discrete_iql", "discrete_iql", {}),
    ("discrete_bc-bf16", "discrete_bc", {"bf16": True}),
    ("discrete_bcq-bf16", "discrete_bcq", {"bf16": True}),
    ("discrete_cql-bf16", "discrete_cql", {"bf16": True}),
    ("discrete_iql-bf16", "discrete_iql", {"bf16": True}),
]


def tiny_config(algo: str, **overrides):
    """The algorithm's default config with 16-unit networks and batches of 16, plus `overrides`."""
    config_class = AGENTS.get(algo).config_class
    names = {f.name for f in dataclasses.fields(config_class)}
    tiny = {name: (16, 16) for name in names if "hidden" in name}
    tiny["batch_size"] = 16
    return replace(config_class(), **tiny, **overrides)


def _params(cases):
    return pytest.mark.parametrize("algo, overrides", [case[1:] for case in cases], ids=[case[0] for case in cases])


@_params(CONTINUOUS_CASES)
def test_check_agent_continuous(tiny_dataset, algo, overrides):
    config = tiny_config(algo, **overrides)
    agent_class = AGENTS.get(algo)
    check_agent(lambda seed: agent_class(tiny_dataset.spec, config, seed=seed), tiny_dataset)


@_params(DISCRETE_CASES)
def test_check_agent_discrete(tiny_discrete_dataset, algo, overrides):
    config = tiny_config(algo, **overrides)
    agent_class = AGENTS.get(algo)
    check_agent(lambda seed: agent_class(tiny_discrete_dataset.spec, config, seed=seed), tiny_discrete_dataset)


def _trained_and_loaded(tmp_path, dataset, algo, overrides):
    agent = AGENTS.get(algo)(dataset.spec, tiny_config(algo, normalize_observations=True, **overrides), seed=3)
    agent.prepare(dataset)
    for index in range(4):
        agent.update(dataset.sample(16, np.random.default_rng(index)))
    return agent, load_agent(save_agent(tmp_path / "agent.safetensors", agent))


@_params(CONTINUOUS_CASES)
def test_loaded_checkpoint_acts_identically_continuous(tmp_path, tiny_dataset, algo, overrides):
    # statistics far from the identity and an asymmetric action box, so a lost normaliser or scaling would show
    dataset = dataclasses.replace(
        tiny_dataset, observations=tiny_dataset.observations * 4.0 + 2.0,
        next_observations=tiny_dataset.next_observations * 4.0 + 2.0,
        metadata={**tiny_dataset.metadata, "action_low": [-2.0, 0.0], "action_high": [2.0, 1.0]},
    )
    agent, loaded = _trained_and_loaded(tmp_path, dataset, algo, overrides)
    observations = dataset.observations[:32]
    assert np.array_equal(agent.act(observations, True), loaded.act(observations, True))
    torch.manual_seed(7)
    stochastic = agent.act(observations, False)
    torch.manual_seed(7)
    assert np.array_equal(stochastic, loaded.act(observations, False))
    assert ((stochastic >= np.array([-2.0, 0.0]) - 1e-6) & (stochastic <= np.array([2.0, 1.0]) + 1e-6)).all()
    assert torch.equal(loaded.obs_normalizer.std, agent.obs_normalizer.std)
    assert loaded.num_updates == 4


@_params(DISCRETE_CASES)
def test_loaded_checkpoint_acts_identically_discrete(tmp_path, tiny_discrete_dataset, algo, overrides):
    dataset = dataclasses.replace(
        tiny_discrete_dataset, observations=tiny_discrete_dataset.observations * 4.0 + 2.0,
        next_observations=tiny_discrete_dataset.next_observations * 4.0 + 2.0,
    )
    agent, loaded = _trained_and_loaded(tmp_path, dataset, algo, overrides)
    observations = dataset.observations[:32]
    greedy = agent.act(observations, True)
    assert greedy.dtype == np.int64 and np.array_equal(greedy, loaded.act(observations, True))
    torch.manual_seed(7)
    stochastic = agent.act(observations, False)
    torch.manual_seed(7)
    assert np.array_equal(stochastic, loaded.act(observations, False))
    assert ((stochastic >= 0) & (stochastic < 3)).all()
    assert torch.equal(loaded.obs_normalizer.mean, agent.obs_normalizer.mean)


@pytest.mark.parametrize("algo", sorted({case[1] for case in CONTINUOUS_CASES}))
def test_continuous_algorithms_refuse_discrete_actions(tiny_discrete_dataset, algo):
    with pytest.raises(TrajlabError, match="continuous actions"):
        AGENTS.get(algo)(tiny_discrete_dataset.spec, tiny_config(algo))


@pytest.mark.parametrize("algo", sorted({case[1] for case in DISCRETE_CASES}))
def test_discrete_algorithms_refuse_continuous_actions(tiny_dataset, algo):
    with pytest.raises(TrajlabError, match="discrete actions"):
        AGENTS.get(algo)(tiny_dataset.spec, tiny_config(algo))


@pytest.mark.parametrize("algo", ["bcq", "bear", "plas", "discrete_bcq", "discrete_cql", "discrete_iql"])
def test_td_target_does_not_bootstrap_from_terminal_states(tiny_dataset, tiny_discrete_dataset, algo):
    dataset = tiny_discrete_dataset if algo.startswith("discrete") else tiny_dataset
    agent = AGENTS.get(algo)(dataset.spec, tiny_config(algo), seed=0)
    agent.prepare(dataset)
    batch = agent.preprocess(dataset.sample(16, np.random.default_rng(0)))
    terminal = batch.replace(terminals=torch.ones_like(batch.terminals))
    assert torch.equal(agent.td_target(terminal), terminal.rewards)
    bootstrapped = agent.td_target(batch.replace(terminals=torch.zeros_like(batch.terminals)))
    assert bootstrapped.shape == (16,) and not torch.equal(bootstrapped, batch.rewards)
