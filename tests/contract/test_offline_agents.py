"""check_agent over the continuous offline algorithms, with tiny networks; and checkpoints that act identically.

To cover another offline algorithm, add a line to AGENT_CASES: (case id, algorithm name, config overrides).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS, load_agent, save_agent
from trajlab.core.config import replace
from trajlab.testing import check_agent

AGENT_CASES = [
    ("bc", "bc", {}),
    ("td3_bc", "td3_bc", {}),
    ("iql", "iql", {}),
    ("iql-constant-lr", "iql", {"actor_lr_decay_steps": 0, "scale_rewards": False}),
    ("awac", "awac", {"num_action_samples": 3}),
    ("cql", "cql", {}),
    ("cql-lagrange", "cql", {"lagrange_lr": 1e-3, "soft_backup": True}),
    ("bc-bf16", "bc", {"bf16": True}),
    ("td3_bc-bf16", "td3_bc", {"bf16": True}),
    ("iql-bf16", "iql", {"bf16": True}),
    ("awac-bf16", "awac", {"bf16": True}),
    ("cql-bf16", "cql", {"bf16": True, "lagrange_lr": 1e-3}),
]


def tiny_config(algo: str, **overrides):
    """The algorithm's default config with 16-unit networks and batches of 16, plus `overrides`."""
    config_class = AGENTS.get(algo).config_class
    names = {f.name for f in dataclasses.fields(config_class)}
    tiny = {name: (16, 16) for name in names if "hidden" in name}
    tiny.update({"batch_size": 16} if "batch_size" in names else {})
    return replace(config_class(), **tiny, **overrides)


@pytest.mark.parametrize("algo, overrides", [case[1:] for case in AGENT_CASES], ids=[case[0] for case in AGENT_CASES])
def test_check_agent(tiny_dataset, algo, overrides):
    config = tiny_config(algo, **overrides)
    agent_class = AGENTS.get(algo)
    check_agent(lambda seed: agent_class(tiny_dataset.spec, config, seed=seed), tiny_dataset)


@pytest.mark.parametrize("algo, overrides", [case[1:] for case in AGENT_CASES], ids=[case[0] for case in AGENT_CASES])
def test_loaded_checkpoint_acts_identically(tmp_path, tiny_dataset, algo, overrides):
    # a dataset whose statistics are far from the identity, so a lost normaliser or reward scale would show
    dataset = dataclasses.replace(
        tiny_dataset, rewards=tiny_dataset.rewards * 50.0 + 3.0,
        observations=tiny_dataset.observations * 4.0 + 2.0,
        next_observations=tiny_dataset.next_observations * 4.0 + 2.0,
        metadata={**tiny_dataset.metadata, "action_low": [-2.0, 0.0], "action_high": [2.0, 1.0]},
    )
    agent = AGENTS.get(algo)(dataset.spec, tiny_config(algo, **overrides), seed=3)
    agent.prepare(dataset)
    for index in range(4):
        agent.update(dataset.sample(16, np.random.default_rng(index)))
    path = save_agent(tmp_path / "agent.safetensors", agent)
    loaded = load_agent(path)

    observations = dataset.observations[:32]
    assert np.array_equal(agent.act(observations, True), loaded.act(observations, True))
    torch.manual_seed(7)
    stochastic = agent.act(observations, False)
    torch.manual_seed(7)
    assert np.array_equal(stochastic, loaded.act(observations, False))
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    assert ((stochastic >= low - 1e-6) & (stochastic <= high + 1e-6)).all()
    assert loaded.reward_scale == agent.reward_scale and loaded.reward_shift == agent.reward_shift
    assert torch.equal(loaded.obs_normalizer.mean, agent.obs_normalizer.mean)
    assert loaded.num_updates == 4


@pytest.mark.parametrize("algo", sorted({case[1] for case in AGENT_CASES}))
def test_discrete_actions_are_refused(tiny_discrete_dataset, algo):
    from trajlab.core.errors import TrajlabError

    with pytest.raises(TrajlabError, match="continuous actions"):
        AGENTS.get(algo)(tiny_discrete_dataset.spec, tiny_config(algo))


@pytest.mark.slow  # torch.compile takes 10-60 s per algorithm on a 2-core CPU
@pytest.mark.parametrize("algo", ["bc", "td3_bc", "iql", "awac", "cql"])
def test_check_agent_compiled(tiny_dataset, algo):
    config = tiny_config(algo, compile=True)
    agent_class = AGENTS.get(algo)
    check_agent(lambda seed: agent_class(tiny_dataset.spec, config, seed=seed), tiny_dataset)
