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
    repeats: int = 1
    """Independent retrainings of every group and of the reference, averaged: one retraining's return carries
    its training seed's luck, which at small sizes is as large as a group's effect. Repeat 0 uses `seed`, the
    others seeds derived from it."""


@dataclass
class LooResult:
    groups: list[int]
    reference_returns: np.ndarray
    """Return of the agent retrained on every held transition, per repeat [R]."""
    repeat_returns: np.ndarray
    """Return of the agent retrained without each group, per repeat [R, G]."""

    @property
    def reference_return(self) -> float:
        return float(self.reference_returns.mean())

    @property
    def returns(self) -> np.ndarray:
        """Mean over repeats of the return without each group [G]."""
        return self.repeat_returns.mean(axis=0)

    @property
    def repeat_influence(self) -> np.ndarray:
        """Influence per repeat [R, G], each against its own repeat's reference (same seed, same minibatches)."""
        return self.repeat_returns - self.reference_returns[:, None]

    @property
    def influence(self) -> np.ndarray:
        return self.repeat_influence.mean(axis=0)

    def repeat_agreement(self) -> float | None:
        """Mean Spearman correlation between the repeats' influence vectors (None with one repeat): how well
        the reference agrees with itself, a ceiling for any estimate's agreement with one repeat."""
        if len(self.repeat_returns) < 2:
            return None
        from scipy.stats import spearmanr

        pairs = [spearmanr(a, b).statistic for i, a in enumerate(self.repeat_influence)
                 for b in self.repeat_influence[i + 1:]]
        finite = [float(value) for value in pairs if np.isfinite(value)]
        return float(np.mean(finite)) if finite else None


def repeat_seed(seed: int, repeat: int) -> int:
    """Seed of one repeat: `seed` itself for the first (so one repeat is the single retraining it always was)."""
    return seed if repeat == 0 else derive_seed(seed, f"loo-repeat-{repeat}") % 2**31


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
    if min(config.updates, config.n_eval, config.repeats) < 1:
        raise TrajlabError(f"updates, n_eval and repeats must be at least 1, got {config.updates}, "
                           f"{config.n_eval} and {config.repeats}")
    _, replay, _ = load_masked_run(run)
    chosen = [group.group for group in select_groups(replay, groups)]
    if len(chosen) < 2 and groups is None:
        raise TrajlabError("leave-one-out needs at least 2 groups in the run (lower its group size)")
    kwargs: dict[str, Any] = {"run": run, "updates": config.updates, "n_eval": config.n_eval}
    jobs = [Job(retrain_without, {**kwargs, "group": group, "seed": repeat_seed(config.seed, repeat)},
                label=f"without {group} (repeat {repeat})")
            for repeat in range(config.repeats) for group in [None, *chosen]]
    returns = run_jobs(jobs, executor=config.executor, progress=progress, description="leave-one-out")
    table = np.asarray(returns, dtype=np.float64).reshape(config.repeats, len(chosen) + 1)
    return LooResult(chosen, table[:, 0], table[:, 1:])
