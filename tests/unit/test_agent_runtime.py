"""Runtime options (compile, bf16) beside the algorithm config, agents that build without reseeding the process,
and one algorithm file for the continuous and the discrete IQL and BC."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS, load_agent, save_agent
from trajlab.algos.base import RuntimeOptions, agent_options_from_dict, new_agent, split_runtime_options
from trajlab.algos.offline.iql import IQL, IQLConfig
from trajlab.algos.online.sac import SAC, SACConfig
from trajlab.core.checkpoint import load_checkpoint, save_checkpoint
from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import seed_everything
from trajlab.testing import check_agent, synthetic_dataset

TINY_IQL = IQLConfig(actor_hidden=(8,), critic_hidden=(8,), batch_size=16)


def _random_state() -> tuple:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _weights(agent) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value.clone() for name, module in agent.modules().items()
            for key, value in module.state_dict().items()}


# --- seeding belongs to the run ---------------------------------------------------------------------------------
def test_load_agent_leaves_the_global_random_state_alone(tmp_path, tiny_dataset):
    path = save_agent(tmp_path / "agent.safetensors", new_agent(IQL, tiny_dataset.spec, TINY_IQL, seed=3))
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    torch_state, numpy_state, python_state = _random_state()
    load_agent(path)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1]) and random.getstate() == python_state


def test_building_an_agent_does_not_seed_and_new_agent_does(tiny_dataset):
    torch.manual_seed(1)
    first = IQL(tiny_dataset.spec, TINY_IQL, seed=0)
    torch.manual_seed(1)
    second = IQL(tiny_dataset.spec, TINY_IQL, seed=99)
    assert all(torch.equal(value, _weights(second)[name]) for name, value in _weights(first).items())
    seeded = [new_agent(IQL, tiny_dataset.spec, TINY_IQL, seed=5) for _ in range(2)]
    assert all(torch.equal(value, _weights(seeded[1])[name]) for name, value in _weights(seeded[0]).items())
    assert seeded[0].seed == 5 and second.seed == 99


def test_seed_everything_does_not_set_the_hash_seed(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    seed_everything(3)
    assert "PYTHONHASHSEED" not in os.environ


# --- runtime options -------------------------------------------------------------------------------------------
def test_split_runtime_options_takes_compile_and_bf16_out_of_agent_options():
    values, runtime = split_runtime_options({"hidden": [8], "compile": True, "bf16": False})
    assert values == {"hidden": [8]} and runtime == RuntimeOptions(compile=True)
    assert split_runtime_options({"lr": 0.1}) == ({"lr": 0.1}, RuntimeOptions())
    with pytest.raises(TrajlabError, match="compile must be true or false"):
        split_runtime_options({"compile": "yes"})


def test_runtime_options_round_trip_through_a_checkpoint(tmp_path, tiny_dataset):
    agent = new_agent(IQL, tiny_dataset.spec, TINY_IQL, seed=0, runtime=RuntimeOptions(bf16=True))
    path = save_agent(tmp_path / "agent.safetensors", agent)
    assert load_checkpoint(path)[1]["runtime"] == {"compile": False, "bf16": True}
    assert "bf16" not in load_checkpoint(path)[1]["config"]
    loaded = load_agent(path)
    assert loaded.runtime == RuntimeOptions(bf16=True) and loaded.config == TINY_IQL
    assert load_agent(path, runtime=RuntimeOptions()).runtime == RuntimeOptions()


def test_checkpoints_with_compile_and_bf16_in_the_agent_config_still_load(tmp_path, tiny_dataset):
    agent = new_agent(IQL, tiny_dataset.spec, TINY_IQL, seed=0)
    state, metadata = load_checkpoint(save_agent(tmp_path / "new.safetensors", agent))
    # how checkpoints were written before runtime options had their own block
    metadata = {key: value for key, value in metadata.items() if key != "runtime"}
    metadata["config"] = {**metadata["config"], "compile": False, "bf16": True}
    loaded = load_agent(save_checkpoint(tmp_path / "old.safetensors", state, metadata))
    assert loaded.config == TINY_IQL and loaded.runtime == RuntimeOptions(bf16=True)
    observations = tiny_dataset.observations[:8]
    assert np.array_equal(loaded.act(observations), agent.act(observations))
    config, runtime = agent_options_from_dict(IQL, {"actor_hidden": [8], "compile": True}, {"compile": False})
    assert config.actor_hidden == (8,) and runtime == RuntimeOptions()  # a runtime block wins over old keys


def test_bf16_runtime_reaches_the_networks(tiny_dataset):
    batch = tiny_dataset.sample(16, np.random.default_rng(0))
    config = SACConfig(hidden=(16, 16), batch_size=16)
    plain = new_agent(SAC, tiny_dataset.spec, config, seed=0).compute_losses(batch)
    bf16 = new_agent(SAC, tiny_dataset.spec, config, seed=0, runtime=RuntimeOptions(bf16=True)).compute_losses(batch)
    assert plain.info_q.dtype == torch.float32 and bf16.info_q.dtype == torch.bfloat16
    iql = [new_agent(IQL, tiny_dataset.spec, TINY_IQL, seed=0, runtime=RuntimeOptions(bf16=bf16)).compute_losses(batch)
           for bf16 in (False, True)]
    assert not torch.equal(iql[0].critic, iql[1].critic)  # same weights, bfloat16 matmuls
    torch.testing.assert_close(iql[0].critic, iql[1].critic.float(), rtol=0.1, atol=0.1)
    check_agent(lambda seed: new_agent(SAC, tiny_dataset.spec, config, seed=seed, runtime=RuntimeOptions(bf16=True)),
                tiny_dataset)


# --- one file for the continuous and the discrete algorithm ---------------------------------------------------
# Values of the separate iql/discrete_iql/bc/discrete_bc files before they were merged (seed 0, 8-unit networks):
# the sum of each network's initial weights, the mean losses on one batch, and the metrics of two updates.
BEFORE_MERGE = {
    "iql": ({"actor": -1.570869922638, "critic": -2.469187740004, "value": -0.764042835915},
            {"value": 0.025023439899086952, "critic": 16822.86328125, "actor": 1.5111045837402344},
            [{"value_loss": 0.027507388964295387, "actor_loss": 1.2510417699813843, "critic_loss": 16430.64453125},
             {"value_loss": 0.035699158906936646, "actor_loss": 1.4960922002792358, "critic_loss": 24120.8125}]),
    "discrete_iql": ({"actor": -1.636045885272, "critic": -2.58723986987, "value": -0.085006186622},
                     {"value": 0.116773821413517, "critic": 3.1334564685821533, "actor": 0.4479237198829651},
                     [{"value_loss": 0.08852996677160263, "actor_loss": 0.42229923605918884,
                       "critic_loss": 2.0544443130493164},
                      {"value_loss": 0.15148381888866425, "actor_loss": 0.42898058891296387,
                       "critic_loss": 1.840153455734253}]),
    "bc": ({"actor": -1.570869922638}, {"actor": 0.3700770139694214},
           [{"actor_loss": 0.38950806856155396}, {"actor_loss": 0.36004847288131714}]),
    "discrete_bc": ({"actor": -1.636045885272}, {"actor": 1.0938583612442017},
                    [{"actor_loss": 1.1361579895019531}, {"actor_loss": 1.0907044410705566}]),
}


@pytest.mark.parametrize("algo", sorted(BEFORE_MERGE))
def test_merged_files_give_the_numbers_of_the_separate_ones(algo):
    discrete = algo.startswith("discrete")
    dataset = synthetic_dataset(discrete=discrete, action_dim=3 if discrete else 2)
    agent_class = AGENTS.get(algo)
    hidden = {"hidden": (8,)} if algo.endswith("bc") else {"actor_hidden": (8,), "critic_hidden": (8,)}
    agent = new_agent(agent_class, dataset.spec, agent_class.config_class(**hidden, batch_size=16), seed=0)
    initial, losses, metrics = BEFORE_MERGE[algo]
    for name, total in initial.items():
        assert sum(p.double().sum() for p in agent.networks[name].parameters()).item() == pytest.approx(total, abs=1e-9)
    agent.prepare(dataset)
    means = agent.compute_losses(dataset.sample(16, np.random.default_rng(0))).means()
    assert means == pytest.approx(losses, rel=1e-5)
    updates = [agent.update(dataset.sample(16, np.random.default_rng(i + 1))) for i in range(2)]
    assert updates == [pytest.approx(expected, rel=1e-5) for expected in metrics]


def test_discrete_variants_live_in_the_continuous_algorithms_file():
    for continuous, discrete in (("iql", "discrete_iql"), ("bc", "discrete_bc")):
        module = f"trajlab.algos.offline.{continuous}"
        assert AGENTS.get(discrete).__module__ == AGENTS.get(continuous).__module__ == module
    spec = synthetic_dataset(discrete=True, action_dim=3).spec
    # the categorical actor keeps the weight names of the plain MLP it replaced, so older checkpoints load
    actor = AGENTS.get("discrete_iql")(spec, AGENTS.get("discrete_iql").config_class(actor_hidden=(8,))).actor
    assert sorted(actor.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
