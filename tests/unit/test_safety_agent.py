"""The PPO-Lagrangian agent and the on-policy loop on the real SafetyPointGoal1-v0 (1 env, 32-step rollouts)."""

import numpy as np
import pytest
import torch

from trajlab.algos.base import load_agent, new_agent, save_agent
from trajlab.algos.online.ppo_lagrangian import PPOLagrangian, PPOLagrangianConfig
from trajlab.core.errors import TrajlabError
from trajlab.core.spec import SpaceSpec
from trajlab.envs.safety import SafetyVectorEnv, check_finite
from trajlab.training.onpolicy import train_onpolicy

TINY = PPOLagrangianConfig(hidden=(16, 16), epochs=1, batch_size=16, kp=1.0, ki=0.1, target_cost=0.0)


@pytest.fixture(scope="module")
def envs():
    made = SafetyVectorEnv("SafetyPointGoal1-v0", 1, seed=0)
    yield made
    made.close()


def trained(envs, seed=0, config=TINY, iterations=2):
    torch.set_num_threads(1)
    agent = new_agent(PPOLagrangian, SpaceSpec.from_env(envs), config, seed=seed)
    envs.envs[0].unwrapped.task.hazards.size = 0.2
    history = train_onpolicy(agent, envs, iterations=iterations, horizon=32, seed=seed, progress=False)
    return agent, history


def test_same_seed_twice_gives_identical_weights_and_metrics(envs):
    first, first_history = trained(envs)
    second, second_history = trained(envs)
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    np.testing.assert_equal(first_history.rows, second_history.rows)  # NaN (no finished episode) equals NaN


def test_checkpoint_keeps_pid_state_and_observation_normaliser(envs, tmp_path):
    agent, _ = trained(envs)
    agent.pid.step(0.5)  # a nonzero integral and history to carry
    loaded = load_agent(save_agent(tmp_path / "agent.safetensors", agent))
    assert loaded.pid.state() == agent.pid.state()
    assert loaded.iterations == agent.iterations == 2
    assert torch.equal(loaded.model.obs_mean, agent.model.obs_mean)
    assert not torch.equal(agent.model.obs_mean, torch.zeros_like(agent.model.obs_mean))
    obs = np.zeros((3, 60), dtype=np.float32)
    assert np.array_equal(loaded.act(obs), agent.act(obs))


def test_unsafe_agent_keeps_lambda_at_zero_while_constrained_one_raises_it(envs):
    unsafe, _ = trained(envs, config=PPOLagrangianConfig(hidden=(16, 16), epochs=1, batch_size=16, use_cost=False))
    assert unsafe.lagrange == 0.0
    constrained = new_agent(PPOLagrangian, unsafe.spec, TINY, seed=0)
    assert constrained.end_iteration(0.5) > 0.0


def test_editor_removes_the_component_along_the_direction_where_the_gate_opens():
    agent = new_agent(PPOLagrangian, SpaceSpec(4, 2, False, (-1.0,) * 2, (1.0,) * 2),
                      PPOLagrangianConfig(hidden=(3,), editor=True), seed=0)
    editor = agent.model.editor
    z = torch.tensor([[2.0, 1.0, 0.0], [-2.0, 1.0, 0.0]])
    assert torch.equal(editor(z), z)  # off until set
    editor.set(torch.tensor([2.0, 0.0, 0.0]), tau=0.5, alpha=1.0, beta=1000.0)
    edited = editor(z)
    assert edited[0].tolist() == pytest.approx([0.0, 1.0, 0.0])  # gate open: component along u removed
    assert edited[1].tolist() == pytest.approx([-2.0, 1.0, 0.0])  # below tau: untouched


def test_nan_observations_are_a_one_line_error():
    with pytest.raises(TrajlabError, match="NaN"):
        check_finite(np.array([[0.0, np.nan]]), "step")


def test_cost_is_kept_through_the_vector_env(envs):
    envs.reset()
    envs.envs[0].unwrapped.task.hazards.size = 10.0  # after reset (which refuses a start inside a hazard)
    step = envs.step(np.zeros((1, 2)))
    envs.envs[0].unwrapped.task.hazards.size = 0.2
    assert step.costs.tolist() == [1.0]
    assert step.costs.dtype == np.float32


def test_update_on_nan_observations_is_a_one_line_error_and_leaves_the_weights():
    agent = new_agent(PPOLagrangian, SpaceSpec(4, 2, False, (-1.0,) * 2, (1.0,) * 2), TINY, seed=0)
    n = 8
    obs = torch.zeros(n, 4)
    obs[3, 1] = float("nan")
    from trajlab.core.protocols import Batch

    batch = Batch(obs, torch.zeros(n, 2), torch.zeros(n), torch.zeros(n, 4), torch.zeros(n), torch.arange(n),
                  torch.arange(n))
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    with pytest.raises(TrajlabError, match="not finite"):
        agent.update(batch)
    assert all(torch.equal(v, agent.model.state_dict()[k]) for k, v in before.items())


def _rollout(steps=64, envs_count=2, seed=0):
    from trajlab.training.onpolicy import Rollout

    rng = np.random.default_rng(seed)
    shape = (steps, envs_count)
    costs = (rng.random(shape) < 0.3).astype(np.float32)
    return Rollout(rng.normal(size=(*shape, 3)).astype(np.float32), rng.normal(size=(*shape, 2)).astype(np.float32),
                   np.zeros(shape, np.float32), rng.normal(size=shape).astype(np.float32), costs,
                   np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(shape, np.float32),
                   (np.zeros(envs_count, np.float32), np.zeros(envs_count, np.float32)))


@pytest.mark.parametrize("standardize", [False, True])
def test_cost_advantage_is_centred_and_scaled_only_when_asked(standardize):
    from trajlab.training.onpolicy import gae, rollout_batch

    config = PPOLagrangianConfig(hidden=(8,), standardize_cost_advantage=standardize)
    agent = new_agent(PPOLagrangian, SpaceSpec(observation_dim=3, action_dim=2), config, seed=0)
    rollout = _rollout()
    batch = rollout_batch(agent, rollout)
    raw, _ = gae(rollout.costs, rollout.values_c, rollout.dones, rollout.last_values[1], config.gamma,
                 config.gae_lambda)
    assert abs(float(batch.advantages_c.mean())) < 1e-5
    expected_std = 1.0 if standardize else raw.std()
    assert float(batch.advantages_c.std(unbiased=False)) == pytest.approx(expected_std, rel=1e-4)
    assert float(batch.advantages_r.std(unbiased=False)) == pytest.approx(1.0, rel=1e-4)


def test_concept_fine_tuning_takes_its_own_entropy_lr_and_cost_scaling(monkeypatch):
    from trajlab.unlearning import safety

    students = []
    monkeypatch.setattr(safety, "_envs", lambda options: type("Closed", (), {"close": lambda self: None})())
    monkeypatch.setattr(safety, "train_onpolicy", lambda student, *a, **k: students.append(student))
    expert = new_agent(PPOLagrangian, SpaceSpec(observation_dim=3, action_dim=2),
                       PPOLagrangianConfig(hidden=(8,), use_cost=False, entropy_coef=0.03), seed=0)
    safety.run_concept(expert, safety.ConceptConfig(updates=1, entropy_coef=0.0, lr=1e-3,
                                                    standardize_cost_advantage=True))
    student = students[-1]
    assert (student.config.entropy_coef, student.config.lr, student.config.use_cost) == (0.0, 1e-3, True)
    assert student.config.standardize_cost_advantage
    assert student.optimizers["model"].param_groups[0]["lr"] == 1e-3
    safety.run_concept(expert, safety.ConceptConfig(updates=1))
    assert students[-1].config.entropy_coef == 0.03  # None keeps the expert's
