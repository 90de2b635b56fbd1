"""Removing an unsafe behaviour from a trained PPO(-Lagrangian) policy: concept, decremental, repedit.

Registered in `METHODS` like TrajDeleter, with the same call `unlearn(agent, dataset, forget_episode_ids,
config)`; these methods collect their own experience in the config's env, so `dataset` is unused (None) and
`forget_episode_ids` is used by `decremental` only (None: the unsafe episodes it finds). Each returns a new agent;
`SafetyUnlearnResult` (from `run_*`) adds what the method measured.

* concept: fine-tune the expert with the PID-Lagrangian on the hazard cost (its own gains and target).
* decremental: collect the expert's episodes, name those whose cost rate exceeds the target (episode ids), then
  PPO-clipped updates that lower the log-probability of the unsafe episodes' actions and behaviour-clone and
  value-fit the safe ones (advantage +bc on safe steps, -forget on unsafe ones), re-collecting every few updates.
* repedit: fit a linear hazard probe on the trunk's latents of balanced safe/hazard states; the agent gets a
  representation editor along the probe's direction (saved with it), optionally fine-tuned with it in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trajlab.algos.online.ppo_lagrangian import PPOLagrangian, RolloutBatch
from trajlab.core.errors import TrajlabError
from trajlab.data.dataset import TransitionDataset
from trajlab.envs.safety import SafetyVectorEnv
from trajlab.eval.latents import HazardProbe, fingerprint, fit_probe, latents
from trajlab.eval.safety_rollouts import labelled_states
from trajlab.training.onpolicy import OnPolicyHistory, collect, gae, ppo_epochs, start, train_onpolicy
from trajlab.unlearning.base import register_method


@dataclass(frozen=True)
class SafetyEnvOptions:
    env_id: str = "SafetyPointGoal1-v0"
    """Safety task to collect experience in."""
    num_envs: int = 8
    """Env copies per rollout."""
    horizon: int = 1024
    """Steps per env copy per rollout."""
    seed: int = 0
    """Seed of envs and minibatches."""


@dataclass(frozen=True)
class ConceptConfig:
    envs: SafetyEnvOptions = field(default_factory=SafetyEnvOptions)
    """Where to fine-tune."""
    updates: int = 150
    """Policy iterations of PID-Lagrangian fine-tuning."""
    kp: float = 2.0
    """K_P of the fine-tuning's PID controller."""
    ki: float = 0.01
    """K_I."""
    kd: float = 0.1
    """K_D."""
    target_cost: float = 0.03
    """d, the allowed cost per step."""
    entropy_coef: float | None = None
    """Entropy bonus of the fine-tuning (None: the expert's)."""
    lr: float | None = None
    """Learning rate of the fine-tuning (None: the expert's)."""
    standardize_cost_advantage: bool = False
    """Scale the cost advantage to unit variance (see PPOLagrangianConfig)."""


@dataclass(frozen=True)
class DecrementalConfig:
    envs: SafetyEnvOptions = field(default_factory=SafetyEnvOptions)
    """Where to collect episodes."""
    updates: int = 200
    """Updates (each `epochs_per_update` PPO-clipped passes over the current collection)."""
    episodes: int = 200
    """Episodes per collection (cut at `horizon` steps each)."""
    recollect_every: int = 10
    """Collect new episodes with the current policy every this many updates."""
    epochs_per_update: int = 10
    """Passes over the collection per update."""
    bc_coef: float = 1.0
    """Advantage given to the safe episodes' actions (behaviour cloning)."""
    forget_coef: float = 1.0
    """Advantage -forget_coef given to the unsafe episodes' actions (pushed away, within PPO's clip)."""
    value_coef: float = 0.5
    """Weight of value fitting on the safe episodes' returns."""
    entropy_coef: float = 0.01
    """Entropy bonus."""
    target_cost: float = 0.03
    """An episode is unsafe when its cost per step exceeds this."""


@dataclass(frozen=True)
class RepeditConfig:
    envs: SafetyEnvOptions = field(default_factory=SafetyEnvOptions)
    """Where to collect the probe's states (and fine-tune, if asked)."""
    per_class: int = 10_000
    """Safe and hazard states each for the probe (fewer if the rollouts found fewer)."""
    collect_steps: int = 200_000
    """Env steps of the expert (stochastic) to find hazard states in."""
    tau_quantile: float = 0.8
    """tau = this quantile of the probe-direction projections."""
    alpha: float = 1.5
    """Fraction of the hazard component removed where the gate is open."""
    beta: float = 10.0
    """Slope of the soft gate sigmoid(beta * (z.u - tau))."""
    finetune_updates: int = 0
    """PID-Lagrangian iterations with the editor in place (0: edit only)."""
    target_cost: float = 0.03
    """d, for the optional fine-tuning."""


@dataclass
class SafetyUnlearnResult:
    agent: PPOLagrangian
    history: OnPolicyHistory | None = None
    details: dict[str, Any] = field(default_factory=dict)
    probe: HazardProbe | None = None
    dataset: TransitionDataset | None = None
    """decremental: its first collection of the expert's episodes (what the forget ids name)."""


def _check_agent(agent: Any) -> PPOLagrangian:
    if not isinstance(agent, PPOLagrangian):
        raise TrajlabError(f"safety unlearning needs a ppo_lagrangian agent, got {type(agent).__name__}")
    return agent


def _envs(options: SafetyEnvOptions) -> SafetyVectorEnv:
    return SafetyVectorEnv(options.env_id, options.num_envs, seed=options.seed)


def run_concept(agent: Any, config: ConceptConfig, *, progress: bool = False) -> SafetyUnlearnResult:
    expert = _check_agent(agent)
    kept = {name: value for name, value in (("entropy_coef", config.entropy_coef), ("lr", config.lr))
            if value is not None}
    student = expert.with_options(use_cost=True, kp=config.kp, ki=config.ki, kd=config.kd,
                                  target_cost=config.target_cost,
                                  standardize_cost_advantage=config.standardize_cost_advantage, **kept)
    envs = _envs(config.envs)
    history = train_onpolicy(student, envs, iterations=config.updates, horizon=config.envs.horizon,
                             seed=config.envs.seed, progress=progress)
    envs.close()
    return SafetyUnlearnResult(student, history, {"updates": config.updates, "final_lagrange": student.lagrange})


@register_method("concept", ConceptConfig)
def concept(agent: Any, dataset: Any, forget_episode_ids: Any, config: ConceptConfig) -> PPOLagrangian:
    return run_concept(agent, config).agent


def _episode_ids(dones: np.ndarray, first_id: int) -> np.ndarray:
    """[T, N] episode id of every step: ids count up per env copy, column by column, from `first_id`."""
    ends = np.vstack([np.zeros((1, dones.shape[1])), np.cumsum(dones, axis=0)[:-1]]).astype(int)
    offsets = np.concatenate([[0], np.cumsum(ends[-1] + 1)[:-1]])
    return first_id + ends + offsets


def _decremental_batch(agent: PPOLagrangian, config: DecrementalConfig, first_id: int,
                       forget: set[int] | None) -> tuple[RolloutBatch, np.ndarray, np.ndarray, TransitionDataset]:
    """One collection as a RolloutBatch whose advantages say keep (+bc) or unlearn (-forget); (batch, episode
    ids of the collection, ids marked unsafe, the collection as a dataset)."""
    envs = _envs(config.envs)
    per_env = int(np.ceil(config.episodes / envs.count))
    rollout = collect(agent, envs, start(envs), per_env * config.envs.horizon)
    envs.close()
    # each `horizon`-step stretch of a copy is one episode here (cut like a time limit), so a collection holds
    # `episodes` of them and no id spans two collections
    rollout.dones[config.envs.horizon - 1::config.envs.horizon] = 1.0
    ids = _episode_ids(rollout.dones, first_id)
    unique = np.unique(ids)
    if forget is not None and not forget <= set(unique.tolist()):
        unknown = sorted(forget - set(unique.tolist()))[:5]
        raise TrajlabError(f"unknown episode id(s) {unknown}: the first collection has ids "
                           f"{int(unique.min())}..{int(unique.max())}")
    rate = {i: float(rollout.costs[ids == i].mean()) for i in unique}
    unsafe = np.array(sorted(i for i in unique if (rate[i] > config.target_cost if forget is None else i in forget)))
    marked = np.isin(ids, unsafe)
    advantages = np.where(marked, -config.forget_coef, config.bc_coef).astype(np.float32)
    _, returns = gae(rollout.rewards, rollout.values_r, rollout.dones, rollout.last_values[0], agent.config.gamma, 1.0)
    flat = lambda a: torch.as_tensor(a.reshape(a.shape[0] * a.shape[1], *a.shape[2:]), dtype=torch.float32)  # noqa: E731
    n = rollout.rewards.size
    weights = torch.ones(n)
    batch = RolloutBatch(flat(rollout.observations), flat(rollout.actions), flat(rollout.rewards),
                         flat(rollout.observations), flat(rollout.dones), torch.arange(n), flat(ids).long(),
                         costs=flat(rollout.costs), weights=weights, old_log_probs=flat(rollout.log_probs),
                         advantages_r=flat(advantages), advantages_c=torch.zeros(n), returns_r=flat(returns),
                         returns_c=flat(rollout.values_c))
    return batch.to(agent.device), unique, unsafe, _collection_dataset(rollout, ids, config.envs.env_id)


def _collection_dataset(rollout: Any, ids: np.ndarray, env_id: str) -> TransitionDataset:
    """The collection as a TransitionDataset (rows grouped by env copy, so each episode is contiguous; the
    horizon cuts are timeouts), so its episodes have content hashes for a deletion certificate."""
    by_env = lambda a: np.swapaxes(a, 0, 1).reshape(a.shape[0] * a.shape[1], *a.shape[2:])  # noqa: E731
    return TransitionDataset.from_arrays(
        observations=by_env(rollout.observations), actions=np.clip(by_env(rollout.actions), -1, 1),
        rewards=by_env(rollout.rewards), terminals=np.zeros(rollout.rewards.size, bool),
        timeouts=by_env(rollout.dones).astype(bool), episode_ids=by_env(ids).astype(np.int64),
        costs=by_env(rollout.costs), metadata={"env_id": env_id, "source": "decremental first collection"})


def run_decremental(agent: Any, config: DecrementalConfig, forget_episode_ids: Any = None) -> SafetyUnlearnResult:
    expert = _check_agent(agent)
    student = expert.with_options(use_cost=False, epochs=config.epochs_per_update, value_coef=config.value_coef,
                                  entropy_coef=config.entropy_coef)
    generator = torch.Generator().manual_seed(config.envs.seed)
    forget = None if forget_episode_ids is None else {int(i) for i in forget_episode_ids}
    marked: list[int] = []
    seen, first = 0, None
    for update in range(config.updates):
        if update % config.recollect_every == 0:
            batch, ids, unsafe, collection = _decremental_batch(student, config, seen,
                                                                forget if update == 0 else None)
            seen, marked = seen + len(ids), marked + [int(i) for i in unsafe]
            first = collection if first is None else first
        ppo_epochs(student, batch, generator)
    first_ids = [i for i in marked if i in set(first.episode_id_list.tolist())] if first is not None else []
    return SafetyUnlearnResult(student, None, {"updates": config.updates, "episodes_seen": seen,
                                               "unsafe_episode_ids": marked,
                                               "first_collection_unsafe_ids": first_ids}, dataset=first)


@register_method("decremental", DecrementalConfig)
def decremental(agent: Any, dataset: Any, forget_episode_ids: Any, config: DecrementalConfig) -> PPOLagrangian:
    return run_decremental(agent, config, forget_episode_ids).agent


def run_repedit(agent: Any, config: RepeditConfig, *, progress: bool = False) -> SafetyUnlearnResult:
    expert = _check_agent(agent)
    options = config.envs
    states, hazard = labelled_states(expert, options.env_id, config.collect_steps, seed=options.seed,
                                     num_envs=options.num_envs)
    probe = fit_probe(latents(expert, states), hazard, per_class=config.per_class, tau_quantile=config.tau_quantile,
                      seed=options.seed, model_fingerprint=fingerprint(expert))
    edited = expert.with_options(editor=True)
    edited.model.editor.set(torch.as_tensor(probe.direction), probe.tau, config.alpha, config.beta)
    history = None
    if config.finetune_updates:
        edited = edited.with_options(use_cost=True, target_cost=config.target_cost)
        envs = _envs(options)
        history = train_onpolicy(edited, envs, iterations=config.finetune_updates, horizon=options.horizon,
                                 seed=options.seed, progress=progress)
        envs.close()
    details = {"updates": config.finetune_updates, "probe_accuracy": probe.accuracy, "tau": probe.tau,
               "hazard_states": int(hazard.sum()), "states": int(len(hazard))}
    return SafetyUnlearnResult(edited, history, details, probe)


@register_method("repedit", RepeditConfig)
def repedit(agent: Any, dataset: Any, forget_episode_ids: Any, config: RepeditConfig) -> PPOLagrangian:
    return run_repedit(agent, config).agent
