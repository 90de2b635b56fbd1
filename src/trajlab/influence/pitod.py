"""PIToD (Hiraoka et al., RLC 2025): the influence of every experience group from one turn-over-dropout run.

Each group e of consecutive transitions trained only the members of its mask m_e, so the flipped mask 1 - m_e
is a model that never saw e. The influence of e on a score is score(flipped mask of e) - score(all members):
positive on the return means the agent would do better without e (e is harmful); positive on the Q-estimation
bias means e helped the critic's estimates (removing it makes them worse).

Scores: the return of deterministic evaluation episodes (every group's flipped mask evaluated side by side, one
batched act per step); the Q-estimation bias, mean |Q(s, a) - G(s, a)| / max(|G(s, a)|, 10) over the state-action
pairs of stochastic evaluation rollouts, G their discounted Monte-Carlo return with SAC's entropy bonus; and
self-influence on the TD error and the policy loss, the share of a group's experiences whose loss (the agent's
own `compute_losses`, under its flipped mask against all members) is higher.

Amendment: the agent with the flipped mask of the group whose removal scores best, as a new agent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from trajlab.algos.base import load_agent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, require
from trajlab.core.rundir import RunDirectory, agent_checkpoint
from trajlab.core.seeding import derive_seed
from trajlab.data.replay import ReplayBuffer
from trajlab.eval.rollouts import rollouts_by_copy
from trajlab.influence.common import influence, loss_shares, seeded_torch
from trajlab.influence.common import return_scores as shared_return_scores

BIAS_FLOOR = 10.0
"""|G| below this counts as this in the bias's denominator (the paper's normalisation)."""


@runtime_checkable
class MaskedAgent(Protocol):
    """An agent with masked ensembles (trajlab's `masked_sac`): what PIToD needs beyond `Agent`."""

    num_members: int

    def act_masked(self, observations: np.ndarray, masks: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions [N, act] for observations [N, obs] under member masks [N, K]."""

    def masked_q(self, observations: Tensor, actions: Tensor, mask: Tensor | None) -> Tensor:
        """Q(s, a) [N] under a member mask."""

    def masked_log_prob(self, observations: Tensor, actions: Tensor, mask: Tensor | None) -> Tensor:
        """log pi(a|s) [N] under a member mask."""

    def set_deploy_mask(self, mask: np.ndarray | None) -> None:
        """Act with this member mask [K] from now on."""

    def masked_alpha(self, mask: Tensor | None) -> float:
        """The entropy temperature of the policy under a member mask (the Q bias's soft returns)."""


@dataclass(frozen=True)
class EstimateConfig:
    """How influences are estimated from a trained agent and its replay buffer."""

    n_eval: int = 10
    """Deterministic evaluation episodes per mask for the return score (the paper: 10)."""
    bias_episodes: int = 1
    """Stochastic evaluation episodes per mask whose state-action pairs give the Q-estimation bias."""
    bias_pairs: int = 1000
    """State-action pairs per mask in the bias (the first ones of its episodes; the paper: 1,000)."""
    loss_samples: int = 256
    """Experiences per group whose TD error and policy loss give the self-influences."""
    max_steps: int | None = None
    """Cap on evaluation episode length (None: the environment's time limit)."""
    seed: int = 0
    """Seed of the evaluation episodes and of the loss samples."""
    scores: tuple[str, ...] = ("return", "bias", "td", "policy")
    """Which influences to estimate (return and bias cost evaluation episodes, td and policy a forward pass)."""
    baseline: str = "all"
    """What the flipped mask's return and bias are compared with: "all" (every member, as the paper's return and
    bias influences) or "own" (the group's own mask m_e, the contrast of turn-over dropout and of the paper's TD
    and policy influences). A flipped mask is half the members, so against "all" its influence also carries the
    cost of averaging fewer members; "own" compares two halves, one trained on the group and one not (one more
    evaluated mask per group)."""


SCORES = ("return", "bias", "td", "policy")
BASELINES = ("all", "own")


@dataclass(frozen=True)
class Group:
    """One experience group: consecutive transitions of a replay buffer, or consecutive episodes of a dataset."""

    group: int
    transition_ids: tuple[int, int]
    """First and last transition id of the group held."""
    episode_ids: tuple[int, int]
    """First and last episode id among them."""
    size: int
    mask: np.ndarray = field(repr=False)
    """Its member mask [K] (bool)."""
    episodes: tuple[int, ...] | None = None
    """Every episode id of the group (an offline dataset's episode group; None for a replay buffer's group)."""


@dataclass
class Estimate:
    """Influences of the estimated groups (arrays aligned with `groups`), and the all-member scores."""

    groups: list[Group]
    base: dict[str, float]
    """Score of the all-member agent: return, bias."""
    influence: dict[str, np.ndarray]
    """Score name -> influence per group."""

    def ranked(self, score: str = "return") -> list[int]:
        """Group ids from the most harmful to the most helpful by `score` (return: high influence = harmful)."""
        order = np.argsort(-self.influence[score] if score != "bias" else self.influence[score], kind="stable")
        return [self.groups[index].group for index in order]


# --- groups --------------------------------------------------------------------------------------------------
def groups_in(replay: ReplayBuffer) -> list[Group]:
    """The experience groups the buffer holds, oldest first; a buffer without masks is a user error."""
    if replay.group_masks is None or replay.masks is None:
        raise TrajlabError("the replay buffer has no turn-over dropout masks: train with `trajlab influence train` "
                           "(agent masked_sac)")
    rows = np.arange(replay.oldest_step, replay.num_added) % replay.capacity
    ids = replay.transition_ids[rows]
    group_ids = replay.group_masks.group_of(ids)
    starts = np.flatnonzero(np.r_[True, group_ids[1:] != group_ids[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    return [Group(int(group_ids[start]), (int(ids[start]), int(ids[end - 1])),
                  (int(replay.episode_ids[rows[start]]), int(replay.episode_ids[rows[end - 1]])),
                  int(end - start), replay.masks[rows[start]].copy())
            for start, end in zip(starts, ends)]


def select_groups(replay: ReplayBuffer, wanted: list[int] | None = None) -> list[Group]:
    """The buffer's groups, or those of `wanted` (an id the buffer does not hold is a user error)."""
    groups = groups_in(replay)
    if wanted is None:
        return groups
    by_id = {group.group: group for group in groups}
    unknown = sorted(set(wanted) - set(by_id))
    if unknown:
        raise TrajlabError(f"unknown group id(s) {', '.join(map(str, unknown))}; the run holds groups "
                           f"{groups[0].group}..{groups[-1].group}")
    return [by_id[group] for group in wanted]


# --- runs ------------------------------------------------------------------------------------------------------
REPLAY_FILE = "replay.npz"
"""The replay buffer (with masks) that a `trajlab influence train` run keeps."""


def load_masked_run(run: str | Path) -> tuple[Any, ReplayBuffer, str]:
    """(agent, replay buffer with masks, env id) of an influence training run; anything else is a user error."""
    run_dir = RunDirectory.open(run)
    agent = load_agent(agent_checkpoint(run_dir.path))
    if not isinstance(agent, MaskedAgent):
        raise TrajlabError(f"{run}: its agent ({getattr(agent, 'name', type(agent).__name__)}) has no masked "
                           "ensembles; train with `trajlab influence train`")
    replay_path = run_dir.path / REPLAY_FILE
    if not replay_path.is_file():
        raise TrajlabError(f"{run}: no {REPLAY_FILE} (a run of `trajlab influence train` keeps its replay buffer)")
    spec = agent.spec
    replay = ReplayBuffer(spec.observation_dim, spec.action_dim, _saved_capacity(replay_path), spec.discrete)
    replay.load(replay_path)
    select_groups(replay)  # a buffer without masks stops here
    return agent, replay, str(run_dir.config().get("train", {}).get("env_id"))


def _saved_capacity(path: Path) -> int:
    with np.load(path, allow_pickle=False) as archive:
        if "capacity" not in archive.files:
            raise TrajlabError(f"{path}: not a replay buffer file")
        return int(archive["capacity"])


# --- scores ----------------------------------------------------------------------------------------------------
def return_scores(agent: MaskedAgent, env_id: str, masks: np.ndarray, config: EstimateConfig) -> np.ndarray:
    """Mean deterministic return under each mask [M, K] -> [M]; every mask sees the same n_eval reset seeds."""
    return shared_return_scores(agent, env_id, masks, config.n_eval, config.seed, config.max_steps)


def bias_scores(agent: Any, env_id: str, masks: np.ndarray, config: EstimateConfig) -> np.ndarray:
    """Q-estimation bias under each mask [M, K] -> [M], from stochastic rollouts with that mask."""
    episodes, first = config.bias_episodes, derive_seed(config.seed, "pitod-bias") % 2**31
    seeds = [first + episode for _ in range(len(masks)) for episode in range(episodes)]
    with seeded_torch(agent, derive_seed(config.seed, "pitod-bias-actions")):  # the same seed, the same actions
        rollouts = rollouts_by_copy(lambda obs, rows, det: agent.act_masked(obs, masks[rows // episodes], det),
                                    env_id, seeds, deterministic=False, max_steps=config.max_steps, record=True)
    assert rollouts.steps is not None
    gamma = float(agent.config.gamma)
    scores = []
    for index, mask in enumerate(masks):
        steps = rollouts.steps[index * episodes:(index + 1) * episodes]
        mask_tensor = torch.as_tensor(mask)
        alpha = agent.masked_alpha(mask_tensor)  # members trained independently each have a temperature
        errors = np.concatenate([_relative_errors(agent, episode, mask_tensor, gamma, alpha) for episode in steps])
        scores.append(float(errors[: config.bias_pairs].mean()))
    return np.asarray(scores)


def _relative_errors(agent: Any, episode: dict[str, np.ndarray], mask: Tensor, gamma: float,
                     alpha: float) -> np.ndarray:
    """|Q(s_t, a_t) - G_t| / max(|G_t|, 10) along one episode."""
    observations = torch.as_tensor(episode["observations"], dtype=torch.float32)
    actions = torch.as_tensor(np.asarray(episode["actions"], dtype=np.float32))
    q = agent.masked_q(observations, actions, mask).cpu().numpy()
    log_prob = agent.masked_log_prob(observations, actions, mask).cpu().numpy()
    returns = soft_returns(episode["rewards"], log_prob, gamma, alpha)
    return np.abs(q - returns) / np.maximum(np.abs(returns), BIAS_FLOOR)


def soft_returns(rewards: np.ndarray, log_prob: np.ndarray, gamma: float, alpha: float) -> np.ndarray:
    """G_t = r_t + gamma * (G_{t+1} - alpha * log pi(a_{t+1}|s_{t+1})): the soft Q's Monte-Carlo target (the
    entropy bonus of a state enters from the next step on, as in SAC's soft TD target)."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        returns[t] = rewards[t] + gamma * following
        following = returns[t] - alpha * log_prob[t]
    return returns


def loss_self_influence(agent: Any, replay: ReplayBuffer, groups: list[Group], config: EstimateConfig,
                        terms: dict[str, str]) -> dict[str, np.ndarray]:
    """Share of each group's experiences whose loss term rises under its flipped mask (score name -> [G]).

    `terms` maps a score name to the agent's loss term (e.g. {"td": "critic"}). All groups go through one
    `compute_losses` call per mask setting, with the same random draws for both.
    """
    batch, owner = _group_batch(replay, groups, config)
    return loss_shares(agent, batch, owner, len(groups), config.seed, terms)


def _group_batch(replay: ReplayBuffer, groups: list[Group], config: EstimateConfig) -> tuple[Batch, np.ndarray]:
    """Up to `loss_samples` experiences of every group (seeded draw) in one batch, and each row's group index."""
    rng = np.random.default_rng(derive_seed(config.seed, "pitod-samples"))
    rows, owner = [], []
    for index, group in enumerate(groups):
        ids = np.arange(group.transition_ids[0], group.transition_ids[1] + 1)
        chosen = ids if len(ids) <= config.loss_samples else rng.choice(ids, config.loss_samples, replace=False)
        rows.append(chosen % replay.capacity)
        owner.append(np.full(len(chosen), index))
    return replay.batch_at(np.concatenate(rows)), np.concatenate(owner)


# --- the estimate and the amendment ------------------------------------------------------------------------
def estimate(agent: Any, replay: ReplayBuffer, env_id: str, config: EstimateConfig = EstimateConfig(), *,
             groups: list[int] | None = None, loss_terms: dict[str, str] | None = None) -> Estimate:
    """Influence of every held group (or of `groups`) on the configured scores."""
    require(agent, MaskedAgent, needed_by="PIToD influence estimation")
    check_estimate_config(config)
    chosen = select_groups(replay, groups)
    masks = scored_masks(chosen, agent.num_members, config.baseline)
    base, values = {}, {}
    for score, scorer in (("return", return_scores), ("bias", bias_scores)):
        if score in config.scores:
            scores = scorer(agent, env_id, masks, config)
            base[score], values[score] = float(scores[0]), flipped_influence(scores, len(chosen), config.baseline)
    losses = {name: term for name, term in (loss_terms or {"td": "critic", "policy": "actor"}).items()
              if name in config.scores}
    if losses:
        values.update(loss_self_influence(agent, replay, chosen, config, losses))
    return Estimate(chosen, base, values)


def scored_masks(groups: list[Group], num_members: int, baseline: str) -> np.ndarray:
    """Masks to score [M, K]: all members (row 0, the reported base), every group's flipped mask, and with the
    "own" baseline every group's own mask after them."""
    rows = [np.ones((1, num_members), dtype=bool), np.stack([~group.mask for group in groups])]
    if baseline == "own":
        rows.append(np.stack([group.mask for group in groups]))
    return np.concatenate(rows)


def flipped_influence(scores: np.ndarray, num_groups: int, baseline: str) -> np.ndarray:
    """Influence per group from the scores of `scored_masks`: flipped minus all members, or minus own mask."""
    flipped = scores[1:num_groups + 1]
    return influence(flipped, scores[0]) if baseline == "all" else flipped - scores[num_groups + 1:]


def check_estimate_config(config: EstimateConfig) -> None:
    unknown = sorted(set(config.scores) - set(SCORES))
    if unknown or not config.scores:
        raise TrajlabError(f"unknown influence score(s) {', '.join(unknown) or '(none given)'}; "
                           f"known: {', '.join(SCORES)}")
    if config.baseline not in BASELINES:
        raise TrajlabError(f"unknown influence baseline {config.baseline!r}; known: {', '.join(BASELINES)}")
    for name in ("n_eval", "bias_episodes", "bias_pairs", "loss_samples"):
        if getattr(config, name) < 1:
            raise TrajlabError(f"{name} must be at least 1, got {getattr(config, name)}")


def best_removal(result: Estimate, by: str = "return") -> Group:
    """The group whose removal scores best: highest influence on the return, or lowest on the bias."""
    if by not in ("return", "bias") or by not in result.influence:
        raise TrajlabError(f"cannot amend by {by!r}: the estimate has {', '.join(result.influence)}; "
                           "use return or bias")
    values = result.influence[by]
    index = int(np.argmax(values) if by == "return" else np.argmin(values))
    return result.groups[index]


@runtime_checkable
class DeployableAgent(Protocol):
    """An agent that can act under a member mask (masked_sac, masked_td3_bc, masked_iql): what amendment needs."""

    def set_deploy_mask(self, mask: np.ndarray | None) -> None:
        """Act with this member mask [K] from now on."""


def amended(agent: Any, group: Group) -> Any:
    """A copy of `agent` that acts with the flipped mask of `group` (the agent given is left as it was)."""
    require(agent, DeployableAgent, needed_by="PIToD amendment")
    copied = copy.deepcopy(agent)
    copied.set_deploy_mask(~group.mask)
    return copied
