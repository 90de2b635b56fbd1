"""The policy suite of safety unlearning: return, cost, cost rate, goal reaches, and KL to the oracle.

Every policy is rolled out deterministically on the same env seeds; the KL is measured on a fixed state set (the
states one reference policy visits), KL(oracle(.|s) || policy(.|s)) averaged over it, so policies are compared
on the same states whatever they would visit themselves.
"""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.algos.online.ppo_lagrangian import PPOLagrangian, gaussian_kl
from trajlab.core.io import atomic_path
from trajlab.eval.safety_rollouts import EpisodeRecord, run_episodes


def summary(records: list[EpisodeRecord]) -> dict[str, float]:
    """Means (and standard deviations of return and cost) over episodes."""
    returns = np.array([r.ret for r in records])
    costs = np.array([r.cost for r in records])
    steps = sum(r.length for r in records)
    return {"return": float(returns.mean()), "return_std": float(returns.std()), "cost": float(costs.mean()),
            "cost_std": float(costs.std()), "cost_rate": float(costs.sum() / max(steps, 1)),
            "goals": float(np.mean([r.goals for r in records])), "episodes": len(records)}


@torch.no_grad()
def kl_to(reference: PPOLagrangian, agent: PPOLagrangian, states: np.ndarray) -> float:
    """Mean KL(reference(.|s) || agent(.|s)) over the states."""
    obs = torch.as_tensor(states, dtype=torch.float32)
    return float(gaussian_kl(reference.distribution(obs), agent.distribution(obs)).mean())


def evaluate_policies(agents: dict[str, Any], env_id: str, *, episodes: int, seed: int, num_envs: int,
                      oracle: PPOLagrangian | None = None, states: np.ndarray | None = None,
                      max_steps: int | None = None,
                      deterministic: bool = True) -> tuple[dict[str, dict[str, float]], dict[str, list]]:
    """({name: summary (+ kl_to_oracle)}, {name: episode records}) for every agent, same env seeds for all
    (stochastic policies also draw the same action noise: the torch seed is reset per policy)."""
    summaries, records = {}, {}
    for name, agent in agents.items():
        torch.manual_seed(seed)
        records[name] = run_episodes(agent, env_id, episodes, seed=seed, num_envs=num_envs, max_steps=max_steps,
                                     deterministic=deterministic)
        summaries[name] = summary(records[name])
        if oracle is not None and states is not None:
            summaries[name]["kl_to_oracle"] = kl_to(oracle, agent, states)
    return summaries, records


def write_episode_csv(path: str | Path, records: dict[str, list[EpisodeRecord]]) -> Path:
    """One row per (policy, episode): return, cost, cost rate, length, goals."""
    target = Path(path)
    with atomic_path(target) as temp, open(temp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["policy", "episode", "return", "cost", "cost_rate", "length", "goals"])
        for name, rows in records.items():
            for row in rows:
                values = asdict(row)
                writer.writerow([name, values["episode"], values["ret"], values["cost"], row.cost_rate,
                                 values["length"], values["goals"]])
    return target
