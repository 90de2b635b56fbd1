"""SAC survives save/load and online training is deterministic (check_agent covers it in test_check_agent.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS, load_agent, save_agent
from trajlab.algos.online.sac import SAC, SACConfig
from trajlab.core.errors import TrajlabError
from trajlab.core.rundir import RunDirectory
from trajlab.training.online import OnlineTrainConfig, build_agent, train_online

DROQ = SACConfig(hidden=(16, 16), batch_size=16, critic_dropout=0.01, critic_layer_norm=True, utd_ratio=2)


def test_sac_is_registered():
    assert AGENTS.get("sac") is SAC


def test_loaded_agent_acts_identically(tmp_path, tiny_dataset):
    agent = SAC(tiny_dataset.spec, DROQ, seed=3)
    for index in range(4):
        agent.update(tiny_dataset.sample(16, np.random.default_rng(index)))
    path = save_agent(tmp_path / "sac.safetensors", agent)
    loaded = load_agent(path)
    assert isinstance(loaded, SAC) and loaded.config == DROQ and loaded.num_updates == 4
    observations = tiny_dataset.observations[:10]
    assert np.array_equal(agent.act(observations), loaded.act(observations))
    torch.manual_seed(0)
    stochastic = agent.act(observations, deterministic=False)
    torch.manual_seed(0)
    assert np.array_equal(stochastic, loaded.act(observations, deterministic=False))


def _pendulum(**changes) -> OnlineTrainConfig:
    values = dict(algo="sac", env_id="Pendulum-v1", total_steps=300, learning_starts=100, buffer_size=1000,
                  batch_size=32, eval_every=300, eval_episodes=2, log_every=100, checkpoint_every=0, seed=5,
                  overrides={"hidden": [16, 16]})
    return OnlineTrainConfig(**{**values, **changes})


def _weights(agent) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value for name, module in agent.modules().items()
            for key, value in module.state_dict().items()}


def test_online_training_is_deterministic():
    results = []
    for _ in range(2):
        config = _pendulum()
        results.append(train_online(build_agent(config), config, progress=False))
    first, second = results
    assert first.steps == 300 and first.updates == 200
    assert first.eval_history == second.eval_history and len(first.eval_history) == 1
    assert first.episode_returns == second.episode_returns and len(first.episode_returns) == 1
    weights = _weights(second.agent)
    assert all(torch.equal(value, weights[name]) for name, value in _weights(first.agent).items())
    assert np.array_equal(first.replay.actions, second.replay.actions)
    other_seed = train_online(build_agent(_pendulum(seed=6)), _pendulum(seed=6), progress=False)
    assert other_seed.episode_returns != first.episode_returns


def test_callback_sees_chosen_steps_and_buffer():
    seen = []

    def record(step, agent, replay):
        seen.append((step, len(replay), agent.num_updates))

    config = _pendulum(total_steps=250, eval_every=0)
    train_online(build_agent(config), config, callback=record, callback_every=100, progress=False)
    assert seen == [(100, 100, 0), (200, 200, 100)]


def test_droq_trainer_uses_the_agent_utd_ratio():
    config = _pendulum(total_steps=130, eval_every=0, overrides={"hidden": [16, 16], "utd_ratio": 3})
    result = train_online(build_agent(config), config, progress=False)
    assert result.updates == 30 * 3 and result.agent.num_updates == 90


def test_resume_continues_exactly(tmp_path):
    config = _pendulum(total_steps=500, checkpoint_every=150, eval_every=250, log_every=50)
    straight = train_online(build_agent(config), config, run=RunDirectory.create(tmp_path / "a", config,
                                                                                  command="test"), progress=False)

    def stop(step, agent, replay):
        if step == 450:
            raise KeyboardInterrupt

    run = RunDirectory.create(tmp_path / "b", config, command="test")
    with pytest.raises(KeyboardInterrupt):
        train_online(build_agent(config), config, run=run, callback=stop, progress=False)
    # checkpoints at the first episode end (every 200 steps) after 150 and 300; the replay file of the latest only
    assert sorted(p.name for p in run.checkpoints.glob("step_*.safetensors")) == ["step_200.safetensors",
                                                                                  "step_400.safetensors"]
    assert [p.name for p in run.checkpoints.glob("replay_*.npz")] == ["replay_400.npz"]
    assert isinstance(load_agent(run.checkpoint_path("step_400")), SAC)
    resumed = train_online(build_agent(config), config, run=RunDirectory(run.path), resume=True, progress=False)
    assert resumed.steps == 500 and resumed.eval_history == straight.eval_history
    assert resumed.episode_returns == straight.episode_returns
    weights = _weights(straight.agent)
    assert all(torch.equal(value, weights[name]) for name, value in _weights(resumed.agent).items())
    steps = [int(line.split(",")[0]) for line in (run.path / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(50, 501, 50))  # the rows logged after step 400 before the interruption are gone


def test_resume_needs_a_run_and_a_fitting_agent(tmp_path):
    config = _pendulum()
    with pytest.raises(TrajlabError, match="resume needs"):
        train_online(build_agent(config), config, resume=True)
    hopper = OnlineTrainConfig(env_id="Hopper-v5", overrides={"hidden": [16, 16]})
    with pytest.raises(TrajlabError, match="agent built for"):
        train_online(build_agent(hopper), config, progress=False)
