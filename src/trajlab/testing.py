"""`check_agent`: the contract every trajlab agent keeps, offered to users for their own agents.

    from trajlab.testing import check_agent, synthetic_dataset
    check_agent(lambda seed: MyAgent(spec, config, seed=seed), synthetic_dataset())

It checks the `Agent` protocol, finite per-sample losses of shape [B], that `compute_losses` leaves the weights
alone while `update` changes them, that acting is well-formed, that the state survives a checkpoint file
round trip, and that the same seed gives identical results. Then it checks every capability
(`trajlab.core.protocols`) the agent has: q_value and td_target give finite values of shape [N] / [B]
(td_target [K, B] for a masked ensemble whose K members train independently); the loss terms are the declared
ones, `loss_scales` reaches the update, and a per-sample weight of 0 gives the same update as leaving the
sample out; the agent can be rebuilt from spec, config and seed; `num_updates` counts
updates and survives a state round trip; its tensors are on its `device`. Each failure raises an
AssertionError that says which part of the contract broke.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.algos.base import scaled_losses
from trajlab.core.checkpoint import load_checkpoint, save_checkpoint
from trajlab.core.protocols import (
    Agent,
    Batch,
    Counted,
    LossOutput,
    LossScalable,
    OnDevice,
    Preparable,
    Rebuildable,
    TDTargetProvider,
    ValueEstimator,
    capabilities_of,
    device_of,
    loss_term_names,
)
from trajlab.core.seeding import seed_everything
from trajlab.data.dataset import TransitionDataset

AgentFactory = Callable[[int], Any]


def check_agent(factory: AgentFactory, dataset: TransitionDataset, *, batch_size: int = 16,
                num_updates: int = 3, seed: int = 0) -> list[type]:
    """Run the agent contract on `factory(seed)` with batches from `dataset`; raise AssertionError on a breach.

    The process is seeded with `seed` before each `factory` call, as a trajlab run seeds before it builds its
    agent. Returns the capabilities the agent has, all of which were checked (Preparable by `prepare(dataset)`
    before every fresh agent's first update)."""
    batches = [dataset.sample(batch_size, np.random.default_rng(seed + i)) for i in range(num_updates)]
    agent = _fresh(factory, seed, dataset)
    assert isinstance(agent, Agent), f"{type(agent).__name__} does not follow trajlab.core.Agent"
    _check_losses(agent, batches[0])
    _check_update_changes_parameters(agent, batches)
    _check_act(agent, dataset)
    _check_round_trip(factory, agent, dataset, batches[0], seed)
    _check_determinism(factory, dataset, batches, seed)
    subject = _Subject(factory, agent, dataset, batch_size, seed)
    for capability, check in CAPABILITY_CHECKS:
        if isinstance(agent, capability):
            check(subject)
    return capabilities_of(agent)


def _fresh(factory: AgentFactory, seed: int, dataset: TransitionDataset) -> Any:
    # building an agent does not seed the process; a run seeds before it builds one (algos.base.new_agent)
    seed_everything(seed)
    agent = factory(seed)
    if isinstance(agent, Preparable):
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


@dataclass(frozen=True)
class _Subject:
    """What the capability checks work on: a trained agent, how to build another, and data."""

    factory: AgentFactory
    agent: Any
    dataset: TransitionDataset
    batch_size: int
    seed: int

    def batch(self, rows: np.ndarray | None = None) -> Batch:
        """The dataset's transitions at `rows` (default: a seeded batch of `batch_size`)."""
        if rows is None:
            rows = self.rows(self.batch_size)
        return self.dataset.batch_at(rows)

    def rows(self, count: int) -> np.ndarray:
        return np.random.default_rng(self.seed + 1_000).integers(0, len(self.dataset), size=count)

    def updated(self, batch: Batch, *, seed: int | None = None, **scales: float) -> dict[str, torch.Tensor]:
        """The weights of a copy of the agent after one update on `batch` (torch seeded, terms scaled)."""
        twin = copy.deepcopy(self.agent)
        torch.manual_seed(self.seed if seed is None else seed)
        with scaled_losses(twin, **scales):
            twin.update(batch)
        return _parameters(twin)


def _check_q_value(subject: _Subject) -> None:
    agent, observations = subject.agent, np.array(subject.dataset.observations[:8], dtype=np.float32)
    device = device_of(agent)
    actions = np.asarray(agent.act(observations, deterministic=True))
    with torch.no_grad():
        values = agent.q_value(torch.as_tensor(observations, device=device), torch.as_tensor(actions, device=device))
    assert tuple(values.shape) == (8,), f"q_value gave shape {tuple(values.shape)} for 8 observations, expected (8,)"
    assert torch.isfinite(values).all(), "q_value is not finite"


def _check_td_target(subject: _Subject) -> None:
    batch = subject.batch().to(device_of(subject.agent))
    with torch.no_grad():
        target = subject.agent.td_target(batch)
    expected = [(len(batch),)]
    if getattr(subject.agent, "independent_members", False):  # one target per member of a masked ensemble
        expected.append((subject.agent.num_members, len(batch)))
    assert tuple(target.shape) in expected, (f"td_target returned shape {tuple(target.shape)}, expected "
                                           f"{' or '.join(map(str, expected))}")
    assert torch.isfinite(target).all(), "td_target is not finite"


def _check_loss_terms(subject: _Subject) -> None:
    """The terms compute_losses returns are declared, and loss_scales reaches the update."""
    declared = loss_term_names(subject.agent)
    assert declared, ("compute_losses must be annotated with the agent's LossOutput subclass, whose fields name "
                      "the loss terms that loss_scales scales")
    returned = set(subject.agent.compute_losses(subject.batch()).terms())
    undeclared = sorted(returned - set(declared))
    assert not undeclared, f"compute_losses returned loss term(s) {undeclared} not among the declared {declared}"
    batch = subject.batch()
    switched_off = subject.updated(batch, **{name: 0.0 for name in declared})
    assert not _same(subject.updated(batch), switched_off), "update ignores loss_scales (all terms scaled to 0)"


def _check_zero_weights(subject: _Subject) -> None:
    """A sample with weight 0 gives the same update as leaving it out of the batch."""
    size = subject.batch_size
    kept = size - max(1, size // 4)
    rows = subject.rows(2 * size - kept)
    # zero-weight samples last, so the kept ones sit at the same positions (same arithmetic) in every batch
    weights = torch.cat([torch.ones(kept), torch.zeros(size - kept)])
    weighted = subject.updated(subject.batch(rows[:size]).replace(weights=weights))
    # Per-sample random draws (target noise, sampled actions) take their count from the batch size, so a batch
    # without those samples draws other numbers. What stays exact for every algorithm keeps the batch size and
    # puts other samples in the zero-weight places: they must change nothing.
    replaced = subject.batch(np.concatenate([rows[:kept], rows[size:]])).replace(weights=weights)
    assert _same(weighted, subject.updated(replaced)), "a sample with weight 0 changed the update"
    if _update_draws_random_numbers(subject):
        return
    # an update without random draws must equal the one on the batch without those samples, up to rounding:
    # CPU matrix kernels may block a smaller batch differently, so the sums differ in their last bits
    left_out = subject.updated(subject.batch(rows[:kept]))
    _assert_same(weighted, left_out, "an update with weight-0 samples differs from one without them", atol=1e-6)


def _update_draws_random_numbers(subject: _Subject) -> bool:
    batch = subject.batch()
    return not _same(subject.updated(batch, seed=subject.seed), subject.updated(batch, seed=subject.seed + 1))


def _check_rebuild(subject: _Subject) -> None:
    """`type(agent)(spec, config, device=..., seed=...)`, as retraining builds it, has the same networks."""
    agent = subject.agent
    with torch.random.fork_rng(devices=[]):
        rebuilt = type(agent)(agent.spec, agent.config, device=str(device_of(agent)), seed=agent.seed)
    shapes = {name: tuple(value.shape) for name, value in _parameters(agent).items()}
    rebuilt_shapes = {name: tuple(value.shape) for name, value in _parameters(rebuilt).items()}
    assert rebuilt_shapes == shapes, "an agent rebuilt from spec, config and seed has other networks"


def _check_update_count(subject: _Subject) -> None:
    """num_updates counts update() calls and survives a state round trip (retraining repeats as many)."""
    twin = copy.deepcopy(subject.agent)
    before = twin.num_updates
    twin.update(subject.batch())
    assert twin.num_updates == before + 1, f"num_updates went from {before} to {twin.num_updates} in one update"
    restored = subject.factory(subject.seed + 1)
    restored.load_state_dict(twin.state_dict())
    assert restored.num_updates == twin.num_updates, "num_updates did not survive state_dict/load_state_dict"


def _check_device(subject: _Subject) -> None:
    device = device_of(subject.agent)
    for name, value in _parameters(subject.agent).items():
        same = value.device.type == device.type and device.index in (None, value.device.index)
        assert same, f"{name} is on {value.device}, the agent's device is {device}"


CAPABILITY_CHECKS: list[tuple[type, Callable[[_Subject], None]]] = [
    (ValueEstimator, _check_q_value),
    (TDTargetProvider, _check_td_target),
    (Rebuildable, _check_rebuild),
    (Counted, _check_update_count),
    (OnDevice, _check_device),
    (LossScalable, _check_loss_terms),
    (LossScalable, _check_zero_weights),
]
"""Each capability's checks, in the order they run (an agent without the capability skips its checks)."""


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


def _same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


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
