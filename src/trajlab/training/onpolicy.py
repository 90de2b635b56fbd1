"""The on-policy loop: rollouts from vectorised envs (costs kept), GAE for reward and cost, PPO epochs.

One step of the `Loop` is one policy iteration: `horizon` steps of every env copy, GAE (the agent's gamma and
lambda) for reward and cost, `epochs` passes of shuffled minibatches through `agent.update`, then
`agent.end_iteration(cost rate)` (the PID-Lagrangian step). A time-limit truncation bootstraps from the value of
the final observation; a termination does not. Finished episodes are recorded whole: return, cost, length and
goal reaches, which the metrics rows (and `OnPolicyHistory`) summarise. The envs are any with the interface of
`SafetyVectorEnv` (`MiniGridVectorEnv` too: no cost, a success counts as a goal). `shape_rewards`, when given,
may change a rollout's rewards before GAE (a bonus); the episodes' recorded returns stay the env's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from trajlab.algos.online.ppo_lagrangian import PPOLagrangian, RolloutBatch
from trajlab.core.progress import update_bar
from trajlab.envs.safety import VectorStep
from trajlab.training.loop import Cadence, Loop, MetricWindow, Periodic, WallClock


class VectorEnv(Protocol):
    """What the loop needs of vectorised envs (`SafetyVectorEnv`, `MiniGridVectorEnv`)."""

    count: int

    def reset(self) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> VectorStep: ...


@dataclass(frozen=True)
class Episode:
    """One finished training episode."""

    ret: float
    cost: float
    length: int
    goals: int


@dataclass
class Rollout:
    """`horizon` steps of `n` envs, [T, N] arrays (observations [T, N, obs_dim])."""

    observations: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    values_r: np.ndarray
    values_c: np.ndarray
    dones: np.ndarray
    last_values: tuple[np.ndarray, np.ndarray]


@dataclass
class RolloutState:
    """What carries over between rollouts: the current observations and each env's unfinished episode."""

    observations: np.ndarray
    running: np.ndarray
    """[N, 4]: return, cost, length, goals of each env's current episode."""
    episodes: list[Episode] = field(default_factory=list)


def start(envs: VectorEnv) -> RolloutState:
    return RolloutState(envs.reset(), np.zeros((envs.count, 4)))


def _tensor(array: np.ndarray, agent: PPOLagrangian) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=agent.device)


def collect(agent: PPOLagrangian, envs: VectorEnv, state: RolloutState, horizon: int) -> Rollout:
    """Roll the stochastic policy out for `horizon` steps; updates `state` and the observation normaliser."""
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "logp", "r", "c", "vr", "vc", "done")}
    for _ in range(horizon):
        obs = _tensor(state.observations, agent)
        action, log_prob, value_r, value_c = (x.cpu().numpy() for x in agent.sample(obs))
        step = envs.step(action)
        rewards = step.rewards.copy()
        for index, final in step.final_observations.items():
            if step.truncated[index] and not step.terminated[index]:  # time limit: the episode would go on
                with torch.no_grad():
                    bootstrap = float(agent.values(_tensor(final[None], agent))[0][0])
                rewards[index] += agent.config.gamma * bootstrap
        done = step.terminated | step.truncated
        _track(state, step.rewards, step.costs, step.goal_met, done)
        for key, value in zip(columns, (state.observations, action, log_prob, rewards, step.costs, value_r,
                                        value_c, done), strict=True):
            columns[key].append(value)
        state.observations = step.observations
    observations = np.stack(columns["obs"])
    agent.model.observe(_tensor(observations.reshape(-1, observations.shape[-1]), agent))
    with torch.no_grad():
        last = tuple(v.cpu().numpy() for v in agent.values(_tensor(state.observations, agent)))
    stacked = {key: np.stack(value) for key, value in columns.items()}
    return Rollout(observations, stacked["act"], stacked["logp"], stacked["r"], stacked["c"], stacked["vr"],
                   stacked["vc"], stacked["done"].astype(np.float32), last)  # type: ignore[arg-type]


def _track(state: RolloutState, rewards: np.ndarray, costs: np.ndarray, goals: np.ndarray, done: np.ndarray) -> None:
    state.running += np.stack([rewards, costs, np.ones_like(rewards), goals], axis=1)
    for index in np.flatnonzero(done):
        ret, cost, length, reached = state.running[index]
        state.episodes.append(Episode(float(ret), float(cost), int(length), int(reached)))
        state.running[index] = 0.0


def gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_values: np.ndarray, gamma: float,
        lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns) [T, N]: A_t = sum_k (gamma*lam)^k delta_{t+k}, cut at episode ends."""
    advantages = np.zeros_like(rewards, dtype=np.float32)
    running = np.zeros(rewards.shape[1], dtype=np.float32)
    for t in reversed(range(len(rewards))):
        next_values = last_values if t == len(rewards) - 1 else values[t + 1]
        keep = 1.0 - dones[t]
        delta = rewards[t] + gamma * keep * next_values - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
    return advantages, advantages + values


def rollout_batch(agent: PPOLagrangian, rollout: Rollout) -> RolloutBatch:
    """The rollout flattened into one RolloutBatch with GAE advantages (reward's standardised, cost's centred and,
    with the agent's `standardize_cost_advantage`, scaled too)."""
    gamma, lam = agent.config.gamma, agent.config.gae_lambda
    adv_r, ret_r = gae(rollout.rewards, rollout.values_r, rollout.dones, rollout.last_values[0], gamma, lam)
    adv_c, ret_c = gae(rollout.costs, rollout.values_c, rollout.dones, rollout.last_values[1], gamma, lam)
    adv_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8)
    adv_c = adv_c - adv_c.mean()
    if agent.config.standardize_cost_advantage:
        adv_c = adv_c / (adv_c.std() + 1e-8)
    size = rollout.rewards.size
    flat = {name: _tensor(value.reshape(size, *value.shape[2:]), agent) for name, value in
            {"obs": rollout.observations, "act": rollout.actions, "logp": rollout.log_probs, "r": rollout.rewards,
             "c": rollout.costs, "d": rollout.dones, "ar": adv_r, "ac": adv_c, "rr": ret_r, "rc": ret_c}.items()}
    ids = torch.arange(size, device=agent.device)
    return RolloutBatch(flat["obs"], flat["act"], flat["r"], flat["obs"], flat["d"], ids, ids, costs=flat["c"],
                        old_log_probs=flat["logp"], advantages_r=flat["ar"], advantages_c=flat["ac"],
                        returns_r=flat["rr"], returns_c=flat["rc"])


def ppo_epochs(agent: PPOLagrangian, batch: RolloutBatch, generator: torch.Generator) -> dict[str, float]:
    """`epochs` passes of shuffled minibatches through `agent.update`; the averaged metrics."""
    window = MetricWindow()
    for _ in range(agent.config.epochs):
        order = torch.randperm(len(batch), generator=generator).to(agent.device)
        for begin in range(0, len(batch), agent.config.batch_size):
            window.add(agent.update(batch.index(order[begin:begin + agent.config.batch_size])))
    return window.averages()


@dataclass
class OnPolicyHistory:
    """Per-iteration rows (iteration, env steps, metrics) and every finished episode."""

    rows: list[dict[str, float]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    wall_time_s: float = 0.0


def summarise(episodes: list[Episode]) -> dict[str, float]:
    """Mean return, cost, cost rate (cost per step) and goal reaches of some episodes (NaN when none)."""
    if not episodes:
        return {"return": float("nan"), "cost": float("nan"), "cost_rate": float("nan"), "goals": float("nan")}
    steps = sum(e.length for e in episodes)
    return {"return": float(np.mean([e.ret for e in episodes])), "cost": float(np.mean([e.cost for e in episodes])),
            "cost_rate": sum(e.cost for e in episodes) / max(steps, 1),
            "goals": float(np.mean([e.goals for e in episodes]))}


def train_onpolicy(agent: PPOLagrangian, envs: VectorEnv, *, iterations: int, horizon: int, seed: int,
                   log: Callable[[int, dict[str, float]], Any] | None = None,
                   on_iteration: Callable[[int, PPOLagrangian], Any] | None = None,
                   shape_rewards: Callable[[Rollout], dict[str, float]] | None = None,
                   progress: bool = True) -> OnPolicyHistory:
    """`iterations` PPO(-Lagrangian) iterations; `log(iteration, row)` after each, `on_iteration` too;
    `shape_rewards(rollout)` changes each rollout's rewards in place before GAE and returns metrics for the row."""
    state, history, clock = start(envs), OnPolicyHistory(), WallClock()
    generator = torch.Generator().manual_seed(seed)

    def take_step(iteration: int) -> None:
        rollout = collect(agent, envs, state, horizon)
        shaping = {} if shape_rewards is None else shape_rewards(rollout)
        cost_rate = float(rollout.costs.mean())
        metrics = ppo_epochs(agent, rollout_batch(agent, rollout), generator)
        agent.end_iteration(cost_rate)
        recent, state.episodes = state.episodes, []
        history.episodes += recent
        row = {"env_steps": iteration * horizon * envs.count, "rollout_cost_rate": cost_rate,
               "rollout_reward_per_step": float(rollout.rewards.mean()), **shaping, **metrics,
               **{f"episode_{k}": v for k, v in summarise(recent).items()}, "lagrange": agent.lagrange}
        history.rows.append({"iteration": iteration, **row})
        if log is not None:
            log(iteration, row)

    callback = None if on_iteration is None else Periodic(Cadence(1), lambda n: on_iteration(n, agent))
    with update_bar("ppo", iterations, unit="iterations", enabled=progress) as show:
        Loop(take_step, iterations, callback=callback).run(show=show)
    history.wall_time_s = clock.elapsed_s()
    return history
