"""`check_agent`: the contract every trajlab agent keeps, offered to users for their own agents.

    from trajlab.testing import check_agent, synthetic_dataset
    check_agent(lambda seed: MyAgent(spec, config, seed=seed), synthetic_dataset())

It checks the `Agent` protocol, finite per-sample losses of shape [B], that `compute_losses` leaves the weights
alone while `update` changes them, that acting is well-formed, that the state survives a checkpoint file
round trip, and that the same seed gives identical results. Each failure raises an AssertionError that says
which part of the contract broke.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.core.checkpoint import load_checkpoint, save_checkpoint
from trajlab.core.protocols import Agent, Batch, LossOutput
from trajlab.data.dataset import TransitionDataset

AgentFactory = Callable[[int], Any]


def check_agent(factory: AgentFactory, dataset: TransitionDataset, *, batch_size: int = 16,
                num_updates: int = 3, seed: int = 0) -> None:
    """Run the agent contract on `factory(seed)` with batches from `dataset`; raise AssertionError on a breach."""
    batches = [dataset.sample(batch_size, np.random.default_rng(seed + i)) for i in range(num_updates)]
    agent = _fresh(factory, seed, dataset)
    assert isinstance(agent, Agent), f"{type(agent).__name__} does not follow trajlab.core.Agent"
    _check_losses(agent, batches[0])
    _check_update_changes_parameters(agent, batches)
    _check_act(agent, dataset)
    _check_round_trip(factory, agent, dataset, batches[0], seed)
    _check_determinism(factory, dataset, batches, seed)


def _fresh(factory: AgentFactory, seed: int, dataset: TransitionDataset) -> Any:
    agent = factory(seed)
    if hasattr(agent, "prepare"):
        agent.prepare(dataset)
    return agent


def _parameters(agent: Any) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value.detach().clone()
        for name, module in agent.modules().items()
        for key, value in module.state_dict().items()
    }


def _check_losses(agent: Any, batch: Batch) -> None:
    before = _parameters(agent)
    losses = agent.compute_losses(batch)
    assert isinstance(losses, LossOutput), f"compute_losses returned {type(losses).__name__}, not a LossOutput"
    terms = losses.terms()
    assert terms, "compute_losses returned no loss terms"
    for name, value in terms.items():
        assert value.shape == (len(batch),), f"loss {name!r} has shape {tuple(value.shape)}, expected ({len(batch)},)"
        assert torch.isfinite(value).all(), f"loss {name!r} is not finite"
    _assert_same(before, _parameters(agent), "compute_losses changed the agent's weights (only update may)")


def _check_update_changes_parameters(agent: Any, batches: list[Batch]) -> None:
    before = _parameters(agent)
    for batch in batches:
        metrics = agent.update(batch)
        assert isinstance(metrics, dict), "update must return a dict of floats"
        for name, value in metrics.items():
            assert np.isfinite(float(value)), f"update metric {name!r} is not finite: {value}"
    after = _parameters(agent)
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "update did not change any parameter"
    _check_gradient_layout(agent)


def _check_gradient_layout(agent: Any) -> None:
    """Parameters of fused optimisers must get gradients laid out like themselves: the fused Adam kernel walks
    both in memory order, and a transposed gradient (batched matmuls and vmap can produce one) makes it step the
    wrong weights without any error (pytorch/pytorch#106951)."""
    for name, optimizer in getattr(agent, "optimizers", {}).items():
        if not optimizer.defaults.get("fused"):
            continue
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                strides = [(a, b) for a, b, size in zip(param.stride(), param.grad.stride(), param.shape) if size > 1]
                assert all(a == b for a, b in strides), (
                    f"optimizer {name!r}: a gradient of shape {tuple(param.shape)} has strides "
                    f"{param.grad.stride()}, its parameter {param.stride()}; fused Adam would step the wrong weights")


def _check_act(agent: Any, dataset: TransitionDataset) -> None:
    observations = dataset.observations[:5]
    actions = np.asarray(agent.act(observations, deterministic=True))
    again = np.asarray(agent.act(observations, deterministic=True))
    single = np.asarray(agent.act(observations[0], deterministic=True))
    expected = (5,) if dataset.discrete else (5, dataset.action_dim)
    assert actions.shape == expected, f"act returned shape {actions.shape}, expected {expected}"
    assert single.shape == expected[1:], f"act on one observation returned shape {single.shape}"
    assert np.array_equal(actions, again), "deterministic act is not deterministic"
    if dataset.discrete:
        assert ((actions >= 0) & (actions < dataset.action_dim)).all(), "discrete action out of range"
    else:
        spec = dataset.spec
        low, high = np.asarray(spec.action_low), np.asarray(spec.action_high)
        assert np.isfinite(actions).all() and (actions >= low - 1e-5).all() and (actions <= high + 1e-5).all(), (
            "continuous action outside the action box"
        )


def _check_round_trip(factory: AgentFactory, agent: Any, dataset: TransitionDataset, batch: Batch, seed: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "agent.safetensors"
        save_checkpoint(path, agent.state_dict())
        state, _ = load_checkpoint(path)
    restored = factory(seed + 1)
    restored.load_state_dict(state)
    _assert_same(_parameters(agent), _parameters(restored), "state_dict round trip lost weights")
    observations = dataset.observations[:8]
    assert np.allclose(agent.act(observations, True), restored.act(observations, True), atol=1e-6), (
        "restored agent acts differently"
    )
    torch.manual_seed(seed)
    original_losses = agent.compute_losses(batch).means()
    torch.manual_seed(seed)
    restored_losses = restored.compute_losses(batch).means()
    for name, value in original_losses.items():
        assert np.isclose(value, restored_losses[name], rtol=1e-5, atol=1e-6), f"restored loss {name!r} differs"
    # training continues identically after a restore (optimiser state survived)
    follow_up = copy.deepcopy(batch)
    torch.manual_seed(seed)
    agent.update(follow_up)
    torch.manual_seed(seed)
    restored.update(follow_up)
    _assert_same(_parameters(agent), _parameters(restored), "restored agent trains differently (optimiser state?)",
                 atol=1e-5)


def _check_determinism(factory: AgentFactory, dataset: TransitionDataset, batches: list[Batch], seed: int) -> None:
    runs = []
    for _ in range(2):
        agent = _fresh(factory, seed, dataset)
        for batch in batches:
            agent.update(batch)
        runs.append(_parameters(agent))
    _assert_same(runs[0], runs[1], "same seed gave different weights")


def _assert_same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], message: str,
                 atol: float = 0.0) -> None:
    assert first.keys() == second.keys(), f"{message}: different parameter names"
    for name in first:
        if atol == 0:
            same = torch.equal(first[name], second[name])
        else:
            same = torch.allclose(first[name], second[name], atol=atol)
        assert same, f"{message} ({name})"


def synthetic_dataset(*, num_episodes: int = 6, episode_length: int = 20, observation_dim: int = 4,
                      action_dim: int = 2, discrete: bool = False, seed: int = 0) -> TransitionDataset:
    """A small dataset of random transitions for contract tests (continuous box [-1, 1] or discrete actions)."""
    rng = np.random.default_rng(seed)
    n = num_episodes * episode_length
    observations = rng.normal(size=(n + num_episodes, observation_dim)).astype(np.float32)
    episode_ids = np.repeat(np.arange(num_episodes), episode_length)
    row_in_episode = np.tile(np.arange(episode_length), num_episodes)
    current = observations[np.arange(n) + episode_ids]
    following = observations[np.arange(n) + episode_ids + 1]
    if discrete:
        actions: np.ndarray = rng.integers(0, action_dim, size=n)
    else:
        actions = rng.uniform(-1, 1, size=(n, action_dim)).astype(np.float32)
    terminals = (row_in_episode == episode_length - 1) & (episode_ids % 2 == 0)
    timeouts = (row_in_episode == episode_length - 1) & ~terminals
    metadata: dict[str, Any] = {"env_id": "synthetic", "source": "trajlab.testing"}
    if discrete:
        metadata["num_actions"] = action_dim
    return TransitionDataset(
        observations=current, actions=actions, rewards=rng.normal(size=n).astype(np.float32),
        next_observations=following, terminals=terminals, timeouts=timeouts, episode_ids=episode_ids,
        transition_ids=np.arange(n), metadata=metadata,
    )


def clustered_dataset(*, num_episodes: int = 12, episode_length: int = 25, observation_dim: int = 3,
                      action_dim: int = 1, spread: float = 3.0, seed: int = 0) -> TransitionDataset:
    """A small dataset in which each episode lives in its own region of the state space, with its own action
    and its own constant reward: what an agent learns from one episode shows on that episode's states, so
    unlearning and membership tests have a planted truth to find. Continuous actions in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = num_episodes * episode_length
    episode_ids = np.repeat(np.arange(num_episodes), episode_length)
    row_in_episode = np.tile(np.arange(episode_length), num_episodes)
    centres = rng.normal(0.0, spread, size=(num_episodes, observation_dim))
    directions = rng.normal(size=(num_episodes, observation_dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def positions(steps: np.ndarray) -> np.ndarray:
        along = centres[episode_ids] + 0.05 * steps[:, None] * directions[episode_ids]
        return (along + rng.normal(0.0, 0.05, size=(n, observation_dim))).astype(np.float32)

    episode_actions = rng.uniform(-0.8, 0.8, size=(num_episodes, action_dim))
    actions = np.clip(episode_actions[episode_ids] + rng.normal(0.0, 0.05, size=(n, action_dim)), -1.0, 1.0)
    rewards = rng.uniform(0.0, 1.0, size=num_episodes)[episode_ids] + rng.normal(0.0, 0.01, size=n)
    return TransitionDataset(
        observations=positions(row_in_episode), actions=actions.astype(np.float32),
        rewards=rewards.astype(np.float32), next_observations=positions(row_in_episode + 1),
        terminals=np.zeros(n, dtype=bool), timeouts=row_in_episode == episode_length - 1, episode_ids=episode_ids,
        transition_ids=np.arange(n), metadata={"env_id": "synthetic", "source": "trajlab.testing"},
    )
