"""SAC pieces against hand-computed values, and the replay buffer's ring and id bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from trajlab.algos.base import new_agent
from trajlab.algos.online.sac import SAC, SACConfig, alpha_loss_per_sample, soft_td_target
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch
from trajlab.core.spec import SpaceSpec
from trajlab.data.replay import ReplayBuffer
from trajlab.nn.policies import TanhGaussianPolicy

TINY = SACConfig(hidden=(8, 8), batch_size=4)


def _spec(low: float = -2.0, high: float = 2.0, observation_dim: int = 3, action_dim: int = 2) -> SpaceSpec:
    return SpaceSpec(observation_dim, action_dim, False, (low,) * action_dim, (high,) * action_dim)


def _batch(size: int = 4, observation_dim: int = 3, action_dim: int = 2, seed: int = 0, **changes) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    batch = Batch(
        observations=torch.randn(size, observation_dim, generator=generator),
        actions=torch.rand(size, action_dim, generator=generator) * 4 - 2,
        rewards=torch.randn(size, generator=generator),
        next_observations=torch.randn(size, observation_dim, generator=generator),
        terminals=torch.zeros(size), transition_ids=torch.arange(size), episode_ids=torch.zeros(size, dtype=torch.long),
    )
    return batch.replace(**changes)


# --- temperature ------------------------------------------------------------------------------------------------
def test_alpha_loss_value_and_sign():
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    log_prob = torch.tensor([-1.0, 0.5])
    loss = alpha_loss_per_sample(log_alpha, log_prob, target_entropy=-2.0)
    # -log(0.5) * (log_prob - 2) = 0.6931 * [-3, -1.5]
    assert torch.allclose(loss, torch.tensor([-3.0, -1.5]) * math.log(2.0))
    loss.mean().backward()
    # entropy (-log_prob, mean 0.25) is above the target -2: descent must lower alpha, so the gradient is positive
    assert log_alpha.grad.item() == pytest.approx(2.25)


def test_alpha_rises_when_entropy_is_below_target():
    log_alpha = torch.tensor(0.0, requires_grad=True)
    confident = torch.tensor([5.0, 6.0])  # log-probs of a nearly deterministic policy: entropy about -5.5
    alpha_loss_per_sample(log_alpha, confident, target_entropy=-1.0).mean().backward()
    assert log_alpha.grad.item() == pytest.approx(-4.5)  # descent raises log alpha


def test_alpha_loss_does_not_reach_the_policy():
    log_prob = torch.tensor([0.3, -0.2], requires_grad=True)
    alpha_loss_per_sample(torch.tensor(0.1, requires_grad=True), log_prob, -1.0).sum().backward()
    assert log_prob.grad is None


def test_agent_alpha_term_matches_formula():
    agent = new_agent(SAC, _spec(), TINY, seed=0)
    torch.manual_seed(3)
    losses = agent.compute_losses(_batch())
    expected = -agent.log_alpha.detach() * (losses.info_log_prob + agent.target_entropy)
    assert agent.target_entropy == -2.0  # -action_dim by default
    assert torch.allclose(losses.alpha, expected)


# --- TD target --------------------------------------------------------------------------------------------------
def test_soft_td_target_minimum_and_done_masks():
    rewards = torch.tensor([1.0, 2.0, -1.0])
    terminals = torch.tensor([0.0, 1.0, 0.0])
    next_q = torch.tensor([[10.0, 3.0, -2.0], [8.0, 7.0, -5.0]])  # [critics, B]
    next_log_prob = torch.tensor([-1.0, 0.0, 2.0])
    target = soft_td_target(rewards, terminals, next_q, next_log_prob, alpha=0.5, gamma=0.9)
    # row 0: min 8, soft value 8 + 0.5 = 8.5 -> 1 + 0.9 * 8.5; row 1: terminal -> reward only;
    # row 2: min -5, soft value -5 - 1 = -6 -> -1 + 0.9 * -6
    assert torch.allclose(target, torch.tensor([1.0 + 0.9 * 8.5, 2.0, -1.0 - 0.9 * 6.0]))


def test_timeouts_still_bootstrap():
    target = soft_td_target(torch.zeros(1), torch.zeros(1), torch.full((2, 1), 4.0), torch.zeros(1), 0.1, 0.5)
    assert target.item() == pytest.approx(2.0)


def test_td_target_uses_target_critics_and_fresh_next_actions():
    agent = new_agent(SAC, _spec(), TINY, seed=0)
    batch = _batch(terminals=torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.manual_seed(7)
    target = agent.td_target(batch)
    torch.manual_seed(7)
    with torch.no_grad():
        next_actions, next_log_prob = agent.actor(batch.next_observations)
        next_q = agent.critic_target(batch.next_observations, next_actions)
    expected = soft_td_target(batch.rewards, batch.terminals, next_q, next_log_prob, agent.alpha, TINY.gamma)
    assert torch.allclose(target, expected)
    assert torch.allclose(target[[1, 3]], batch.rewards[[1, 3]])


def test_critic_loss_is_half_squared_error_summed_over_critics():
    agent = new_agent(SAC, _spec(), TINY, seed=0)
    batch = _batch()
    torch.manual_seed(11)
    losses = agent.compute_losses(batch)
    torch.manual_seed(11)
    target = agent.td_target(batch)
    q = agent.critic(batch.observations, batch.actions / 2.0)  # env box [-2, 2] -> [-1, 1]
    assert torch.allclose(losses.info_q, q.detach())
    assert torch.allclose(losses.critic, 0.5 * ((q - target) ** 2).sum(0))


def test_actor_loss_gradient_reaches_the_actor_only():
    agent = new_agent(SAC, _spec(), TINY, seed=0)
    agent.compute_losses(_batch()).actor.mean().backward()
    assert all(p.grad is None for p in agent.critic.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())


# --- tanh-Gaussian policy ---------------------------------------------------------------------------------------
def test_tanh_gaussian_log_prob_matches_numerical_density():
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(3, 2, (8,))
    observation = torch.randn(1, 3)
    mean, log_std = (x.detach().double()[0] for x in policy.distribution_params(observation))
    actions = torch.tensor([[0.3, -0.7], [-0.95, 0.05], [0.8, 0.6]])
    analytic = policy.log_prob(observation.expand(3, 3), actions).detach().double()
    step = 1e-5
    for row, action in enumerate(actions.double()):
        # density of a = tanh(u), u ~ N(mean, std), from central differences of its CDF Phi((atanh a - mean)/std)
        def cdf(a, i):
            return norm.cdf((np.arctanh(a) - mean[i].item()) / math.exp(log_std[i].item()))
        numeric = sum(math.log((cdf(a + step, i) - cdf(a - step, i)) / (2 * step))
                      for i, a in enumerate(action.tolist()))
        assert analytic[row].item() == pytest.approx(numeric, abs=1e-4)


def test_sampled_log_prob_matches_log_prob_of_the_sample():
    torch.manual_seed(1)
    policy = TanhGaussianPolicy(3, 2, (8,))
    observations = torch.randn(5, 3)
    actions, log_prob = policy(observations)
    assert torch.allclose(log_prob, policy.log_prob(observations, actions), atol=1e-3)


# --- agent behaviour --------------------------------------------------------------------------------------------
def test_actions_are_scaled_to_the_env_box():
    agent = new_agent(SAC, SpaceSpec(3, 2, False, (0.0, -4.0), (1.0, 4.0)), TINY, seed=0)
    actions = agent.act(np.random.default_rng(0).normal(size=(64, 3)) * 10, deterministic=False)
    assert actions.shape == (64, 2)
    assert (actions[:, 0] >= 0).all() and (actions[:, 0] <= 1).all()
    assert (actions[:, 1] >= -4).all() and (actions[:, 1] <= 4).all() and actions[:, 1].std() > 0.5
    assert torch.allclose(agent.normalized_actions(torch.tensor([[1.0, -4.0]])), torch.tensor([[1.0, -1.0]]))


def test_critic_updates_every_step_actor_once_per_env_step_with_utd():
    agent = new_agent(SAC, _spec(), SACConfig(hidden=(8, 8), utd_ratio=3), seed=0)
    actor_before = [p.detach().clone() for p in agent.actor.parameters()]
    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    for expected_actor_step in (False, False, True):
        metrics = agent.update(_batch(seed=agent.num_updates))
        assert ("actor_loss" in metrics) is expected_actor_step
        actor_changed = any(not torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters()))
        assert actor_changed is expected_actor_step
        assert any(not torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters()))
        critic_before = [p.detach().clone() for p in agent.critic.parameters()]


def test_target_critic_moves_by_tau():
    agent = new_agent(SAC, _spec(), SACConfig(hidden=(8, 8), tau=0.25), seed=0)
    target_before = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.update(_batch())
    for old, new, online in zip(target_before, agent.critic_target.parameters(), agent.critic.parameters()):
        assert torch.allclose(new, 0.75 * old + 0.25 * online.detach(), atol=1e-6)


def test_zero_weight_samples_do_not_count():
    weights = torch.tensor([1.0, 1.0, 0.0, 0.0])
    batch = _batch(weights=weights)
    changed = batch.replace(rewards=batch.rewards + torch.tensor([0.0, 0.0, 100.0, -100.0]))
    agents = [new_agent(SAC, _spec(), TINY, seed=0) for _ in range(2)]
    for agent, each in zip(agents, (batch, changed)):
        torch.manual_seed(0)
        agent.update(each)
    for first, second in zip(agents[0].critic.parameters(), agents[1].critic.parameters()):
        assert torch.allclose(first, second)


def test_reset_reinitialises_networks_temperature_and_optimisers():
    agent = new_agent(SAC, _spec(), SACConfig(hidden=(8, 8), reset_every=3, initial_alpha=0.5), seed=0)
    for index in range(2):
        agent.update(_batch(seed=index))
    before = [p.detach().clone() for p in agent.actor.parameters()]
    assert agent.alpha.item() != pytest.approx(0.5)
    agent.update(_batch(seed=2))  # the third update triggers the reset
    assert agent.num_updates == 3
    assert agent.alpha.item() == pytest.approx(0.5)
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.actor.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(agent.critic.parameters(), agent.critic_target.parameters()))
    assert all(len(optimizer.state) == 0 for optimizer in agent.optimizers.values())
    agent.update(_batch(seed=3))  # training goes on with fresh optimiser state
    assert all(len(optimizer.state) > 0 for optimizer in agent.optimizers.values())


# --- replay buffer ----------------------------------------------------------------------------------------------
def _filled(capacity: int, steps: int, episode_length: int = 3) -> ReplayBuffer:
    """Transition t has observation [t, t], action [t], reward t; episodes of `episode_length` end in a timeout,
    except that every second one terminates."""
    buffer = ReplayBuffer(2, 1, capacity)
    for t in range(steps):
        end = t % episode_length == episode_length - 1
        terminated = end and (t // episode_length) % 2 == 1
        buffer.add(np.array([t, t]), np.array([t]), float(t), np.array([t + 1, t + 1]), terminated, end)
    return buffer


def test_replay_ring_wraps_and_keeps_ids():
    buffer = _filled(capacity=5, steps=8)
    assert len(buffer) == 5 and buffer.num_added == 8 and buffer.oldest_step == 3
    # rows 0-2 were overwritten by steps 5-7
    assert buffer.transition_ids.tolist() == [5, 6, 7, 3, 4]
    assert buffer.rewards.tolist() == [5, 6, 7, 3, 4]
    assert buffer.episode_ids.tolist() == [1, 2, 2, 1, 1]
    # episode 1 (steps 3-5) terminated; episode 0 (steps 0-2) and 2 would time out
    assert buffer.terminals.tolist() == [1, 0, 0, 0, 0]
    assert buffer.timeouts.tolist() == [0, 0, 0, 0, 0]
    assert buffer.episode_open


def test_replay_terminated_step_is_not_a_timeout():
    buffer = ReplayBuffer(1, 1, 4)
    buffer.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), terminated=True, truncated=True)
    buffer.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), terminated=False, truncated=True)
    assert buffer.terminals[:2].tolist() == [1, 0] and buffer.timeouts[:2].tolist() == [0, 1]
    assert buffer.episode_ids[:2].tolist() == [0, 1] and buffer.episode_id == 2


def test_replay_sample_rows_are_consistent():
    buffer = _filled(capacity=50, steps=20)
    batch = buffer.sample(64, np.random.default_rng(0))
    assert batch.observations.dtype == torch.float32 and batch.terminals.dtype == torch.float32
    ids = batch.transition_ids
    assert torch.equal(batch.rewards, ids.float())
    assert torch.equal(batch.next_observations[:, 0], ids.float() + 1)
    assert torch.equal(batch.episode_ids, ids // 3)
    again = buffer.sample(64, np.random.default_rng(0))
    assert torch.equal(again.transition_ids, ids)


def test_to_dataset_window_keeps_ids_and_cut_episodes():
    buffer = _filled(capacity=100, steps=14)
    window = buffer.to_dataset({"env_id": "x"}, first=4, last=11)
    assert window.transition_ids.tolist() == list(range(4, 11))
    # steps 4-5 end episode 1 (cut at its start), 6-8 episode 2, 9-10 start episode 3 (unfinished)
    assert window.episode_id_list.tolist() == [1, 2, 3]
    assert window.episode_lengths().tolist() == [2, 3, 2]
    assert window.terminals.tolist() == [False, True, False, False, False, False, False]
    assert window.timeouts.tolist() == [False, False, False, False, True, False, False]
    assert window.metadata == {"env_id": "x"}
    assert np.array_equal(window.next_observations[:, 0], np.arange(5, 12))
    whole = buffer.to_dataset()
    assert len(whole) == 14 and whole.num_episodes == 5


def test_to_dataset_after_wrap_is_in_insertion_order():
    buffer = _filled(capacity=5, steps=8)
    dataset = buffer.to_dataset()
    assert dataset.transition_ids.tolist() == [3, 4, 5, 6, 7]
    assert dataset.rewards.tolist() == [3, 4, 5, 6, 7]
    with pytest.raises(TrajlabError, match="no longer in the replay buffer"):
        buffer.to_dataset(first=2)
    with pytest.raises(TrajlabError, match="invalid step window"):
        buffer.to_dataset(first=4, last=9)


def test_replay_state_round_trip(tmp_path):
    buffer = _filled(capacity=6, steps=9)
    path = buffer.save(tmp_path / "replay.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]
    restored = ReplayBuffer(2, 1, 6)
    restored.load(path)
    for name in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                 "episode_ids", "transition_ids"):
        assert np.array_equal(getattr(restored, name), getattr(buffer, name)), name
    assert (restored.position, restored.num_added, restored.episode_id) == (buffer.position, 9, buffer.episode_id)
    restored.add(np.zeros(2), np.zeros(1), 0.0, np.zeros(2), False, False)
    assert restored.transition_ids[restored.position - 1] == 9
    with pytest.raises(TrajlabError, match="capacity"):
        ReplayBuffer(2, 1, 7).load(path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TrajlabError, match="not a readable replay buffer"):
        ReplayBuffer(2, 1, 6).load(tmp_path / "bad.npz")
