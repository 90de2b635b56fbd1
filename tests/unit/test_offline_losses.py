"""Hand-computed values for the distinctive piece of each offline loss, TD targets, and the paper presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS
from trajlab.algos.base import new_agent
from trajlab.algos.offline.awac import AWAC, AWACConfig, awac_weights
from trajlab.algos.offline.bc import bc_loss
from trajlab.algos.offline.cql import CQL, CQLConfig, conservative_gap, cql_logsumexp
from trajlab.algos.offline.iql import IQL, IQLConfig, advantage_weights, cosine_lr, expectile_loss
from trajlab.algos.offline.td3_bc import TD3BC, TD3BCConfig, td3_bc_actor_loss, td3_bc_lambda
from trajlab.core.config import load_preset
from trajlab.core.protocols import Batch


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def close(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(actual, t(expected), rtol=1e-6, atol=1e-6)


# --- BC ---------------------------------------------------------------------------------------------------
def test_bc_loss_is_the_mean_squared_error_over_action_dimensions():
    # sample 0: ((1-0)^2 + (2-0)^2) / 2 = 2.5; sample 1: ((0-1)^2 + (0-1)^2) / 2 = 1
    close(bc_loss(t([[1.0, 2.0], [0.0, 0.0]]), t([[0.0, 0.0], [1.0, 1.0]])), [2.5, 1.0])


# --- TD3+BC -----------------------------------------------------------------------------------------------
def test_td3_bc_lambda_divides_alpha_by_the_mean_absolute_q():
    close(td3_bc_lambda(t([1.0, -3.0]), alpha=2.5), 2.5 / 2.0)  # mean |Q| = (1 + 3) / 2


def test_td3_bc_lambda_carries_no_gradient():
    q = t([1.0, -3.0]).requires_grad_()
    assert not td3_bc_lambda(q, 2.5).requires_grad


def test_td3_bc_actor_loss():
    # lambda = 1.25; sample 0: -1.25 * 1 + (0.5 - 0)^2 = -1.0; sample 1: -1.25 * -3 + (0 - 1)^2 = 4.75
    loss = td3_bc_actor_loss(t([1.0, -3.0]), t([[0.5], [0.0]]), t([[0.0], [1.0]]), alpha=2.5)
    close(loss, [-1.0, 4.75])


# --- IQL --------------------------------------------------------------------------------------------------
def test_expectile_loss_weights_positive_and_negative_errors_asymmetrically():
    # u = 2 > 0: 0.7 * 4 = 2.8; u = -1 < 0: 0.3 * 1 = 0.3; u = 0: 0
    close(expectile_loss(t([2.0, -1.0, 0.0]), 0.7), [2.8, 0.3, 0.0])


def test_expectile_one_half_is_half_the_squared_error():
    close(expectile_loss(t([3.0, -2.0]), 0.5), [4.5, 2.0])


def test_iql_advantage_weights_are_exponentiated_and_clipped():
    # exp(3 * 0) = 1, exp(3 * 1) = e^3, exp(3 * 10) clipped to 100
    close(advantage_weights(t([0.0, 1.0, 10.0]), beta=3.0, max_weight=100.0), [1.0, math.exp(3.0), 100.0])


def test_cosine_learning_rate_schedule():
    assert cosine_lr(1.0, 0, 100) == 1.0
    assert cosine_lr(1.0, 50, 100) == pytest.approx(0.5)
    assert cosine_lr(1.0, 100, 100) == pytest.approx(0.0)
    assert cosine_lr(1.0, 250, 100) == pytest.approx(0.0)
    assert cosine_lr(3e-4, 10, 0) == 3e-4  # no decay


# --- AWAC -------------------------------------------------------------------------------------------------
def test_awac_weights_are_a_batch_softmax_times_the_batch_size():
    # A = [0, ln 3]: softmax = [1/4, 3/4], times B = 2 -> [0.5, 1.5]
    close(awac_weights(t([0.0, math.log(3.0)]), lam=1.0), [0.5, 1.5])
    # lambda = 0.5 doubles the advantages: softmax([0, 2 ln 3]) = [1/10, 9/10] -> [0.2, 1.8]
    close(awac_weights(t([0.0, math.log(3.0)]), lam=0.5), [0.2, 1.8])


def test_awac_weights_ignore_a_shift_of_all_advantages():
    close(awac_weights(t([5.0, 5.0 + math.log(3.0)]), lam=1.0), [0.5, 1.5])


# --- CQL --------------------------------------------------------------------------------------------------
def test_cql_logsumexp_with_importance_weights():
    q, log_density = t([[1.0, 2.0]]), t([[0.0, math.log(2.0)]])
    # log(e^(1 - 0) + e^(2 - ln 2)) = log(e + e^2 / 2)
    close(cql_logsumexp(q, log_density), [math.log(math.e + math.e**2 / 2)])
    # temperature 2: 2 log(e^(1/2) + e^((2 - ln 2) / 2)) = 2 log(sqrt(e) + e / sqrt(2))
    close(cql_logsumexp(q, log_density, temperature=2.0), [2 * math.log(math.sqrt(math.e) + math.e / math.sqrt(2))])


def test_cql_conservative_gap_subtracts_the_data_action_q_per_critic():
    q_samples = t([[[1.0, 2.0]], [[0.0, 0.0]]])  # 2 critics, 1 state, 2 sampled actions
    log_density = t([[0.0, math.log(2.0)]])
    q_data = t([[0.5], [-1.0]])
    gap = conservative_gap(q_samples, log_density, q_data)
    # critic 0: log(e + e^2/2) - 0.5; critic 1: log(e^0 + e^(-ln 2)) + 1 = log(1.5) + 1
    close(gap, [[math.log(math.e + math.e**2 / 2) - 0.5], [math.log(1.5) + 1.0]])


def test_cql_logsumexp_of_equal_values_adds_log_count():
    close(cql_logsumexp(torch.full((1, 30), 4.0), torch.zeros(1, 30)), [4.0 + math.log(30.0)])


# --- TD targets: r + gamma (1 - terminal) * (constant next value) ------------------------------------------
def _constant_output(module: torch.nn.Module, value: float) -> None:
    """Make the network's last layer output `value` whatever its input."""
    last = [m for m in module.modules() if hasattr(m, "weight") and hasattr(m, "bias")][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


def _batch(spec) -> Batch:
    size = 4
    return Batch(
        observations=torch.randn(size, spec.observation_dim), actions=torch.rand(size, spec.action_dim) * 2 - 1,
        rewards=t([1.0, -2.0, 0.5, 0.0]), next_observations=torch.randn(size, spec.observation_dim),
        terminals=t([0.0, 1.0, 0.0, 1.0]), transition_ids=torch.arange(size), episode_ids=torch.zeros(size),
    )


@pytest.mark.parametrize("agent_class, config, network", [
    (TD3BC, TD3BCConfig(actor_hidden=(8,), critic_hidden=(8,)), "critic_target"),
    (AWAC, AWACConfig(actor_hidden=(8,), critic_hidden=(8,)), "critic_target"),
    (CQL, CQLConfig(actor_hidden=(8,), critic_hidden=(8,)), "critic_target"),
    (IQL, IQLConfig(actor_hidden=(8,), critic_hidden=(8,)), "value"),
])
def test_td_target_bootstraps_from_the_next_value_except_at_terminals(tiny_dataset, agent_class, config, network):
    agent = new_agent(agent_class, tiny_dataset.spec, config, seed=0)
    _constant_output(agent.networks[network], 10.0)
    # r + 0.99 * (1 - d) * 10 for r = [1, -2, 0.5, 0], d = [0, 1, 0, 1]
    close(agent.td_target(_batch(tiny_dataset.spec)), [1.0 + 9.9, -2.0, 0.5 + 9.9, 0.0])


def test_cql_soft_backup_subtracts_the_entropy_term(tiny_dataset):
    config = CQLConfig(actor_hidden=(8,), critic_hidden=(8,), soft_backup=True)
    agent = new_agent(CQL, tiny_dataset.spec, config, seed=0)
    _constant_output(agent.critic_target, 10.0)
    batch = _batch(tiny_dataset.spec)
    torch.manual_seed(0)
    target = agent.td_target(batch)
    torch.manual_seed(0)
    _, log_probs = agent.actor(batch.next_observations)
    expected = batch.rewards + 0.99 * (1 - batch.terminals) * (10.0 - 1.0 * log_probs)  # initial alpha is 1
    torch.testing.assert_close(target, expected)


# --- data statistics as each paper uses them ----------------------------------------------------------------
def test_iql_scales_rewards_by_the_spread_of_episode_returns(tiny_dataset):
    agent = new_agent(IQL, tiny_dataset.spec, IQLConfig(actor_hidden=(8,), critic_hidden=(8,)), seed=0)
    agent.prepare(tiny_dataset)
    returns = tiny_dataset.episode_returns()
    assert agent.reward_scale == pytest.approx(1000.0 / (returns.max() - returns.min()))
    assert torch.equal(agent.obs_normalizer.mean, torch.zeros(tiny_dataset.observation_dim))  # IQL: raw states


def test_td3_bc_standardises_states_and_keeps_rewards(tiny_dataset):
    agent = new_agent(TD3BC, tiny_dataset.spec, TD3BCConfig(actor_hidden=(8,), critic_hidden=(8,)), seed=0)
    agent.prepare(tiny_dataset)
    normalized = agent.obs_normalizer(torch.from_numpy(tiny_dataset.observations.copy()))
    torch.testing.assert_close(normalized.mean(0), torch.zeros(tiny_dataset.observation_dim), atol=1e-5, rtol=0)
    assert agent.reward_scale == 1.0


def test_td3_bc_updates_the_actor_every_policy_freq_updates(tiny_dataset):
    config = TD3BCConfig(actor_hidden=(8,), critic_hidden=(8,), batch_size=8)
    agent = new_agent(TD3BC, tiny_dataset.spec, config, seed=0)
    agent.prepare(tiny_dataset)
    changed = []
    for index in range(4):
        before = [p.clone() for p in agent.actor.parameters()]
        metrics = agent.update(tiny_dataset.sample(8, np.random.default_rng(index)))
        changed.append(any(not torch.equal(a, b) for a, b in zip(before, agent.actor.parameters())))
        assert ("actor_loss" in metrics) == changed[-1]
    assert changed == [True, False, True, False]


# --- presets ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["bc", "td3_bc", "iql", "awac", "cql"])
def test_paper_preset_is_the_published_default_and_quick_is_small(algo):
    config_class = AGENTS.get(algo).config_class
    assert load_preset(config_class, f"offline/{algo}", "paper") == config_class()
    quick = load_preset(config_class, f"offline/{algo}", "quick")
    widths = [w for name in ("hidden", "actor_hidden", "critic_hidden") for w in getattr(quick, name, ())]
    assert widths and max(widths) <= 64 and quick.batch_size <= 64


def test_cql_paper_preset_has_trajdeleters_settings():
    config = load_preset(CQLConfig, "offline/cql", "paper")
    assert config.critic_hidden == config.actor_hidden == (256, 256, 256)
    assert (config.actor_lr, config.critic_lr, config.batch_size) == (1e-4, 3e-4, 256)
    assert (config.gamma, config.tau, config.conservative_weight) == (0.99, 0.005, 5.0)
