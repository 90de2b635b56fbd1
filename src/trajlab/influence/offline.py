"""PIToD for offline agents (beyond the paper): which episodes of a dataset helped or hurt a masked offline agent.

A `masked_td3_bc` or `masked_iql` agent trained each group of `group_size` consecutive episodes (group = episode
id // group_size) on its mask's half of every ensemble, so the flipped mask of a group is an agent that never saw
those episodes. Influence of a group on a score = score(flipped mask) - score(all members), as online: the return
of deterministic evaluation episodes in the dataset's environment (when it is known; positive: the agent does
better without the group, it is harmful), and self-influence on the TD error and the policy loss (share of the
group's own transitions whose loss rises under its flipped mask).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.algos.base import load_agent
from trajlab.core.checkpoint import read_checkpoint_metadata
from trajlab.core.errors import TrajlabError
from trajlab.core.rundir import RunDirectory, agent_checkpoint
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset
from trajlab.data.ids import check_dataset_matches
from trajlab.data.masks import GroupMasks
from trajlab.influence.common import loss_shares, return_scores
from trajlab.influence.pitod import (
    Estimate,
    EstimateConfig,
    Group,
    check_estimate_config,
    flipped_influence,
    scored_masks,
)

OFFLINE_SCORES = ("return", "td", "policy")
"""What an offline estimate scores (the Q bias needs the online agent's own rollouts and soft returns)."""


def is_offline_run(run: str | Path) -> bool:
    """A `trajlab train` run (offline: its config names a dataset) rather than an online influence run."""
    return "dataset" in RunDirectory.open(run).config()


def episode_groups(dataset: TransitionDataset, group_masks: GroupMasks) -> list[Group]:
    """The dataset's episode groups, in episode id order, each with its episodes, transitions and mask."""
    episode_ids = np.sort(dataset.episode_id_list)
    groups = group_masks.group_of(episode_ids)
    found = []
    for group in np.unique(groups):
        members = episode_ids[groups == group]
        rows = np.isin(dataset.episode_ids, members)
        transitions = dataset.transition_ids[rows]
        found.append(Group(int(group), (int(transitions.min()), int(transitions.max())),
                           (int(members[0]), int(members[-1])), int(rows.sum()), group_masks.mask(int(group)),
                           tuple(int(episode) for episode in members)))
    return found


def select_episode_groups(dataset: TransitionDataset, group_masks: GroupMasks,
                          wanted: list[int] | None = None) -> list[Group]:
    """Every episode group, or those of `wanted`; fewer than 2 groups or an unknown id is a user error."""
    groups = episode_groups(dataset, group_masks)
    if len(groups) < 2:
        raise TrajlabError(f"group size {group_masks.group_size} puts all {dataset.num_episodes} episodes in one "
                           "group: nothing to compare; lower the group size")
    if wanted is None:
        return groups
    by_id = {group.group: group for group in groups}
    unknown = sorted(set(wanted) - set(by_id))
    if unknown:
        raise TrajlabError(f"unknown group id(s) {', '.join(map(str, unknown))}; the dataset holds groups "
                           f"{groups[0].group}..{groups[-1].group}")
    return [by_id[group] for group in wanted]


def load_offline_run(run: str | Path) -> tuple[Any, TransitionDataset, str | None, Path]:
    """(agent, its dataset, its environment or None, the dataset's path) of an offline masked run."""
    run_dir = RunDirectory.open(run)
    agent = load_agent(agent_checkpoint(run_dir.path))
    if getattr(agent, "episode_group_masks", None) is None:
        raise TrajlabError(f"{run}: its agent ({getattr(agent, 'name', type(agent).__name__)}) has no turn-over "
                           "dropout masks; train with `trajlab influence train --dataset D --algo masked_td3_bc`")
    dataset_path = Path(str(run_dir.config().get("dataset")))
    if not dataset_path.is_file():
        raise TrajlabError(f"{run}: its dataset {dataset_path} is not there any more")
    dataset = TransitionDataset.load(dataset_path)
    check_dataset_matches(agent, dataset)
    metadata = read_checkpoint_metadata(agent_checkpoint(run_dir.path))
    return agent, dataset, metadata.get("env_id"), dataset_path


def offline_scores(config: EstimateConfig, env_id: str | None, *, explicit: bool) -> tuple[str, ...]:
    """The scores an offline estimate can give: without an environment no return, never the bias. Asking for
    one of those explicitly is a user error; a preset's list is narrowed silently."""
    possible = tuple(score for score in OFFLINE_SCORES if score != "return" or env_id is not None)
    refused = [score for score in config.scores if score not in possible]
    if explicit and refused:
        why = "the dataset names no known environment" if "return" in refused else "offline runs have no Q bias"
        raise TrajlabError(f"cannot estimate {', '.join(refused)} for an offline run ({why}); "
                           f"choose from {', '.join(possible)}")
    chosen = tuple(score for score in config.scores if score in possible)
    if not chosen:
        raise TrajlabError(f"no influence score left to estimate; choose from {', '.join(possible)}")
    return chosen


def estimate_offline(agent: Any, dataset: TransitionDataset, env_id: str | None, config: EstimateConfig,
                     scores: tuple[str, ...], groups: list[int] | None = None) -> Estimate:
    """Influence of every episode group (or of `groups`) on `scores` (return, td, policy)."""
    check_estimate_config(config)
    chosen = select_episode_groups(dataset, agent.episode_group_masks, groups)
    base, values = {}, {}
    if "return" in scores:
        assert env_id is not None
        masks = scored_masks(chosen, agent.num_members, config.baseline)
        returns = return_scores(agent, env_id, masks, config.n_eval, config.seed, config.max_steps)
        base["return"] = float(returns[0])
        values["return"] = flipped_influence(returns, len(chosen), config.baseline)
    terms = {name: term for name, term in (("td", "critic"), ("policy", "actor")) if name in scores}
    if terms:
        batch, owner = group_batch(dataset, agent.episode_group_masks, chosen, config)
        values.update(loss_shares(agent, batch, owner, len(chosen), config.seed, terms))
    return Estimate(chosen, base, values)


def group_batch(dataset: TransitionDataset, group_masks: GroupMasks, groups: list[Group],
                config: EstimateConfig) -> tuple[Any, np.ndarray]:
    """Up to `loss_samples` transitions of every group (seeded draw) with their masks, and each row's group."""
    rng = np.random.default_rng(derive_seed(config.seed, "pitod-samples"))
    rows, owner = [], []
    for index, group in enumerate(groups):
        held = np.flatnonzero(np.isin(dataset.episode_ids, group.episodes))
        chosen = held if len(held) <= config.loss_samples else rng.choice(held, config.loss_samples, replace=False)
        rows.append(chosen)
        owner.append(np.full(len(chosen), index))
    picked = np.concatenate(rows)
    masks = group_masks.masks_of(dataset.episode_ids[picked])
    return dataset.batch_at(picked).replace(masks=torch.from_numpy(masks)), np.concatenate(owner)
