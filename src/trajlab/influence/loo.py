"""Leave-one-out influence, the reference PIToD estimates: for each group, a fresh agent trained on the run's
replay buffer without that group, scored like the all-data agent trained the same way.

Every retraining is a `Job` of `trajlab.execution` (in-process, a local process pool, or Ray): it reads the run
from disk (agent config, replay buffer), so nothing large travels between processes. Retrained agents use all
their members (no masks): each one is an ordinary model of the data it was given. The LOO influence of group e is
return(trained without e) - return(trained on everything), the same sign convention as PIToD's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.algos.base import new_agent
from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import derive_seed
from trajlab.data.replay import ReplayBuffer
from trajlab.eval.rollouts import evaluate
from trajlab.execution import Job, run_jobs
from trajlab.influence.pitod import load_masked_run, select_groups


@dataclass(frozen=True)
class LooConfig:
    """How the leave-one-out agents are trained and scored."""

    updates: int = 75_000
    """Updates of each fresh agent (the paper: 75,000 train() calls, 300k updates at UTD 4)."""
    n_eval: int = 10
    """Deterministic evaluation episodes of each retrained agent."""
    seed: int = 0
    """Seed of the fresh agents, their minibatches and evaluations (the same for every group)."""
    executor: str = "local"
    """Where the retrainings run: local (process pool), ray, or serial (in this process)."""


@dataclass
class LooResult:
    groups: list[int]
    reference_return: float
    """Return of the agent retrained on every held transition."""
    returns: np.ndarray
    """Return of the agent retrained without each group."""

    @property
    def influence(self) -> np.ndarray:
        return self.returns - self.reference_return


def rows_without(replay: ReplayBuffer, group: int | None) -> np.ndarray:
    """Ring rows of the held transitions outside `group` (None: all of them)."""
    assert replay.group_masks is not None
    rows = np.arange(replay.oldest_step, replay.num_added) % replay.capacity
    if group is None:
        return rows
    return rows[replay.group_masks.group_of(replay.transition_ids[rows]) != group]


def retrain_without(run: str, group: int | None, updates: int, n_eval: int, seed: int) -> float:
    """Mean evaluation return of a fresh agent trained `updates` times on the run's buffer without `group`."""
    trained, replay, env_id = load_masked_run(run)
    agent = new_agent(type(trained), trained.spec, trained.config, seed=seed, device=str(trained.device))
    rows = rows_without(replay, group)
    rng = np.random.default_rng(derive_seed(seed, "loo-batches"))  # the same minibatch stream for every group
    batch_size = int(agent.config.batch_size)
    for _ in range(updates):
        batch = replay.batch_at(rows[rng.integers(0, len(rows), size=batch_size)]).replace(masks=None)
        agent.update(batch.to(agent.device))
    return evaluate(agent, env_id, episodes=n_eval, seed=derive_seed(seed, "loo-eval") % 2**31).mean_return


def leave_one_out(run: str, config: LooConfig, groups: list[int] | None = None, *,
                  progress: bool = True) -> LooResult:
    """LOO returns of every held group (or `groups`) and of the all-data reference, through the executor."""
    if config.updates < 1 or config.n_eval < 1:
        raise TrajlabError(f"updates and n_eval must be at least 1, got {config.updates} and {config.n_eval}")
    _, replay, _ = load_masked_run(run)
    chosen = [group.group for group in select_groups(replay, groups)]
    if len(chosen) < 2 and groups is None:
        raise TrajlabError("leave-one-out needs at least 2 groups in the run (lower its group size)")
    kwargs: dict[str, Any] = {"run": run, "updates": config.updates, "n_eval": config.n_eval, "seed": config.seed}
    jobs = [Job(retrain_without, {**kwargs, "group": group}, label=f"without {group}")
            for group in [None, *chosen]]
    returns = run_jobs(jobs, executor=config.executor, progress=progress, description="leave-one-out")
    return LooResult(chosen, float(returns[0]), np.asarray(returns[1:], dtype=np.float64))
