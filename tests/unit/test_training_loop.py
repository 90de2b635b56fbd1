"""The composed training loop and its parts, and what the trainings built on it promise users: evaluation in a
named environment, a refused useless online run, safety costs from `info` in sampled batches, and the latest
evaluation in the progress bar."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.progress import update_bar
from trajlab.envs.registry import ENVIRONMENTS, EnvInfo
from trajlab.testing import synthetic_dataset
from trajlab.training import offline, online
from trajlab.training.loop import Cadence, EvalSummary, Loop, MetricWindow, Periodic
from trajlab.training.steps import counting_updates, train_steps

TINY_OFFLINE = {"overrides": {"batch_size": 16}, "log_every": 2, "checkpoint_every": 4, "progress": False}


# --- the parts ------------------------------------------------------------------------------------------------
def test_cadence_picks_multiples_and_the_last_step():
    assert [step for step in range(1, 8) if Cadence(3, last=5)(step)] == [3, 5, 6]
    assert not any(Cadence(0, last=5)(step) for step in range(1, 8))
    waiting = Cadence(100)
    assert not waiting.passed_since(0, 99) and waiting.passed_since(0, 100) and waiting.passed_since(0, 250)
    assert not waiting.passed_since(200, 299) and waiting.passed_since(200, 300)
    assert not Cadence(0).passed_since(0, 10**6)


def test_loop_runs_what_is_due_after_each_step_in_order():
    events: list[tuple[str, int]] = []

    def record(name: str) -> Callable[[int], None]:
        return lambda step: events.append((name, step))

    loop = Loop(record("step"), 6, evaluate=Periodic(Cadence(3), record("eval")),
                log=Periodic(Cadence(2, last=6), record("log")), callback=Periodic(Cadence(4), record("callback")),
                checkpoint=Periodic(lambda step: step == 5, record("checkpoint")))
    loop.run(start=2, show=record("show"))
    assert events == [
        ("step", 3), ("eval", 3), ("log", 3), ("show", 3),  # every evaluation gets its metrics row
        ("step", 4), ("log", 4), ("callback", 4), ("show", 4),
        ("step", 5), ("checkpoint", 5), ("show", 5),
        ("step", 6), ("eval", 6), ("log", 6), ("show", 6),  # one row, though both asked for it
    ]


def test_metric_window_averages_and_resumes_an_interval():
    window = MetricWindow()
    window.add({"loss": 1.0, "q": 2.0})
    window.add({"loss": 4.0})
    resumed = MetricWindow.from_state(window.state())
    resumed.add({"loss": 4.0})
    assert resumed.averages() == {"loss": 3.0, "q": 2.0}
    assert window.averages() == {"loss": 2.5, "q": 2.0}  # the saved state is a copy
    resumed.clear()
    assert resumed.averages() == {}


def test_eval_summary_says_return_and_score():
    assert EvalSummary(10, 123.4, 1.0, None, 2).status() == "eval 123.4"
    assert EvalSummary(10, 123.4, 1.0, 56.78, 2).status() == "eval 123.4 (D4RL score 56.8)"
    assert EvalSummary(10, 123.4, 1.0, 56.78, 2, 166.4).status() == "eval 123.4 (D4RL score 56.8)"
    assert EvalSummary(10, 123.4, 1.0, None, 2, 166.44).status() == "eval 123.4 (vs behaviour 166.4)"


def test_train_steps_counts_every_update_and_returns_the_last_metrics():
    class Sampler:
        def sample(self, batch_size: int) -> int:
            return batch_size

    class Agent:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def update(self, batch: int) -> dict[str, float]:
            self.batches.append(batch)
            return {"updates": float(len(self.batches))}

    agent, counted = Agent(), []
    with counting_updates(lambda: counted.append(1)):
        assert train_steps(agent, Sampler(), 5, batch_size=7) == {"updates": 5.0}
    assert agent.batches == [7] * 5 and len(counted) == 5
    assert train_steps(agent, Sampler(), 0, batch_size=7) == {}


def test_update_bar_shows_the_status(monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich draws as on a terminal
    with update_bar("train", 10, unit="steps", status=lambda: "eval 42.0") as show:
        for step in range(1, 11):
            show(step)
    assert "eval 42.0" in capsys.readouterr().err


# --- offline training: the environment to evaluate in --------------------------------------------------------
@pytest.fixture
def hopper_shaped_without_env(tmp_path):
    """What `trajlab data import` writes for a D4RL file it cannot name the environment of."""
    dataset = synthetic_dataset(observation_dim=11, action_dim=3)
    metadata = {key: value for key, value in dataset.metadata.items() if key != "env_id"}
    return dataclasses.replace(dataset, metadata=metadata).save(tmp_path / "imported.hdf5")


def test_env_id_evaluates_a_dataset_that_names_no_environment(hopper_shaped_without_env, tmp_path):
    config = offline.TrainConfig(algo="bc", dataset=str(hopper_shaped_without_env), steps=4, env_id="Hopper-v5",
                                 eval_every=2, eval_episodes=2, out=str(tmp_path / "run"), **TINY_OFFLINE)
    result = offline.run(config)
    assert result["env_id"] == "Hopper-v5" and result["eval_episodes"] == 2
    assert isinstance(result["eval_mean_return"], float) and isinstance(result["eval_normalized_score"], float)
    assert offline.evaluate_run(tmp_path / "run", episodes=1)["env_id"] == "Hopper-v5"  # recorded for later


def test_without_env_id_the_note_says_how_to_evaluate(hopper_shaped_without_env, tmp_path, capsys):
    config = offline.TrainConfig(algo="bc", dataset=str(hopper_shaped_without_env), steps=2, eval_every=2,
                                 out=str(tmp_path / "run"), **TINY_OFFLINE)
    result = offline.run(config)
    note = capsys.readouterr().err
    assert result["env_id"] is None and result["eval_mean_return"] is None
    assert "no evaluation: the dataset names no environment; pass --env with one of" in note and "Hopper-v5" in note


@pytest.mark.parametrize("dataset_env, env_id, message", [
    (None, "Hoper-v5", "unknown environment 'Hoper-v5'; known: "),
    ("Hopper-v5", "Walker2d-v5", "--env Walker2d-v5 differs from the dataset's environment Hopper-v5"),
    ("synthetic", "Pendulum-v1", "the dataset has (obs_dim, act_dim, discrete)=(11, 3, False), but --env Pendulum-v1"),
])
def test_a_wrong_env_id_is_a_one_line_error_before_anything_is_written(tmp_path, dataset_env, env_id, message):
    dataset = synthetic_dataset(observation_dim=11, action_dim=3).with_metadata(env_id=dataset_env)
    dataset.save(tmp_path / "data.hdf5")
    config = offline.TrainConfig(algo="bc", dataset=str(tmp_path / "data.hdf5"), steps=2, env_id=env_id,
                                 out=str(tmp_path / "run"), **TINY_OFFLINE)
    with pytest.raises(TrajlabError) as error:
        offline.run(config)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


# --- online training ------------------------------------------------------------------------------------------
def test_a_run_that_would_never_update_is_refused(tmp_path):
    config = online.load_online_config("sac", "quick", env_id="Pendulum-v1", total_steps=2000)
    with pytest.raises(TrajlabError) as error:
        online.run(config, out=tmp_path / "run", progress=False)
    message = str(error.value)
    assert message == ("total_steps 2000 <= learning_starts 5000: the run would take random actions only and make "
                       "no update; raise --steps or lower --learning-starts")
    assert not (tmp_path / "run").exists()
    with pytest.raises(TrajlabError, match="total_steps 5000 <= learning_starts 5000"):
        online.check_config(dataclasses.replace(config, total_steps=5000))
    online.check_config(dataclasses.replace(config, total_steps=5001))


class CostLine(gym.Env):
    """A point on a line that the action moves; reward -|position|, and info["cost"] = |action|."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = float(self.np_random.uniform(-1.0, 1.0))
        return np.array([self.position], np.float32), {}

    def step(self, action):
        move = float(np.asarray(action).reshape(-1)[0])
        self.position = float(np.clip(self.position + 0.1 * move, -10.0, 10.0))
        return np.array([self.position], np.float32), -abs(self.position), False, False, {"cost": abs(move)}


@pytest.fixture
def cost_env(monkeypatch) -> str:
    env_id = "trajlab-test/CostLine-v0"
    monkeypatch.setitem(gym.registry, env_id, gym.envs.registration.EnvSpec(env_id, entry_point=CostLine))
    monkeypatch.setitem(ENVIRONMENTS, env_id, EnvInfo(env_id, "safety", max_episode_steps=10))
    return env_id


def test_costs_from_the_env_info_arrive_in_sampled_batches(cost_env):
    config = online.OnlineTrainConfig(env_id=cost_env, total_steps=30, learning_starts=10, buffer_size=100,
                                      batch_size=8, eval_every=0, checkpoint_every=0, log_every=10,
                                      overrides={"hidden": [8, 8]})
    agent = online.build_agent(config)
    batches, env_steps = [], []
    update = agent.update
    agent.update = lambda batch: batches.append(batch) or update(batch)
    result = online.train_online(agent, config, progress=False, on_env_step=env_steps.append)
    assert len(batches) == 20 and all(batch.costs is not None for batch in batches)
    for batch in batches:  # each sampled cost is the one its transition incurred
        assert torch.equal(batch.costs, batch.actions[:, 0].abs())
    assert [env_step.step for env_step in env_steps] == list(range(1, 31))
    assert all(env_step.cost == env_step.info["cost"] == abs(float(env_step.action[0])) for env_step in env_steps)
    assert [env_step.truncated for env_step in env_steps].count(True) == 3  # the time limit's, kept too
    dataset = result.replay.to_dataset()
    assert dataset.costs is not None and np.array_equal(dataset.costs, np.abs(dataset.actions[:, 0]))


# --- the progress bars show the latest evaluation ----------------------------------------------------------
@pytest.fixture
def recorded_status(monkeypatch):
    """The `status` each training hands its progress bar (the bar itself stays silent)."""
    statuses = []

    @contextlib.contextmanager
    def recording_bar(description, total, *, completed=0, enabled=True, unit="updates", status=None):
        statuses.append(status)
        yield lambda done: None

    monkeypatch.setattr(offline, "update_bar", recording_bar)
    monkeypatch.setattr(online, "update_bar", recording_bar)
    return statuses


def test_offline_progress_shows_the_evaluation_return_and_score(tmp_path, recorded_status):
    dataset = synthetic_dataset(observation_dim=11, action_dim=3).with_metadata(env_id="Hopper-v5")
    dataset.save(tmp_path / "hopper.hdf5")
    result = offline.run(offline.TrainConfig(algo="bc", dataset=str(tmp_path / "hopper.hdf5"), steps=2,
                                             eval_every=2, eval_episodes=1, out=str(tmp_path / "run"),
                                             **TINY_OFFLINE))
    (status,) = recorded_status
    assert status() == f"eval {result['eval_mean_return']:.1f} (D4RL score {result['eval_normalized_score']:.1f})"


def test_online_progress_shows_the_last_episode_and_evaluation_returns(recorded_status):
    config = online.OnlineTrainConfig(env_id="Pendulum-v1", total_steps=210, learning_starts=200, batch_size=16,
                                      buffer_size=300, eval_every=210, eval_episodes=1, checkpoint_every=0,
                                      overrides={"hidden": [8, 8]})
    result = online.train_online(online.build_agent(config), config, progress=False)
    (status,) = recorded_status
    episode_return, evaluation = result.episode_returns[-1][1], result.eval_history[-1][1]
    assert status() == f"return {episode_return:.1f}  eval {evaluation:.1f}"
