"""`trajlab influence train | estimate | amend`: PIToD influence of experience groups, from one masked SAC run.

`train` is `trajlab train-online` with the masked SAC (`masked_sac`): every group of `group_size` transitions
carries a member mask, and the run directory keeps the final replay buffer (`replay.npz`, masks included); with
`estimate_every` it also estimates every group's influence during training (`influence_history.json`, a heat map
of influence per group over training time), without changing the training's random stream.
`estimate RUN` scores every group's flipped mask (`trajlab.influence.pitod`) into its own run directory
(default RUN/influence). `amend RUN` writes the agent with the flipped mask of the group whose removal scores
best as a normal checkpoint, with the return before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.algos.base import preserved_random_state, save_agent, split_runtime_options
from trajlab.core.config import from_dict, load_preset, replace, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.io import write_json_atomic
from trajlab.core.rundir import RunDirectory
from trajlab.data.replay import ReplayBuffer
from trajlab.eval.rollouts import evaluate
from trajlab.influence.offline import (
    estimate_offline,
    is_offline_run,
    load_offline_run,
    offline_scores,
    select_episode_groups,
)
from trajlab.influence.pitod import (
    REPLAY_FILE,
    Estimate,
    EstimateConfig,
    Group,
    amended,
    best_removal,
    check_estimate_config,
    load_masked_run,
    select_groups,
)
from trajlab.influence.pitod import estimate as estimate_influence
from trajlab.report.sections.influence import influence_heatmap, influence_plot, write_influence_report
from trajlab.training.online import OnlineTrainConfig, OnlineTrainResult, agent_config_for, load_online_config
from trajlab.training.online import run as run_online

ALGO = "masked_sac"
HISTORY_FILE = "influence_history.json"
ESTIMATE_DIR = "influence"


@dataclass(frozen=True)
class InfluencePreset:
    """A preset configs/influence/<name>.yaml."""

    env_id: str = "Pendulum-v1"
    """Environment `train` uses unless --env names one."""
    train_preset: str = "quick"
    """Masked SAC training preset: configs/online/masked_sac/<train_preset>.yaml."""
    estimate: dict[str, Any] = field(default_factory=dict)
    """EstimateConfig fields (n_eval, bias_episodes, bias_pairs, loss_samples, ...)."""
    offline_preset: str = "quick"
    """Masked offline agent preset of `train --dataset`: configs/offline/<algo>/<offline_preset>.yaml."""
    offline_steps: int = 2_000
    """Gradient updates of `train --dataset` unless --steps says otherwise."""


@dataclass(frozen=True)
class InfluenceTrainConfig:
    """`trajlab influence train`: a masked SAC run whose groups' influences can be estimated."""

    env_id: str | None = None
    """Environment (None: the preset's; with --dataset: the dataset's, for evaluation)."""
    preset: str = "quick"
    """Preset: configs/influence/<preset>.yaml (quick: CPU minutes; paper: Hopper-v5 at the paper's settings)."""
    dataset: str | None = None
    """Train an offline agent on this trajlab HDF5 dataset instead (masks per group of episodes)."""
    algo: str = "masked_td3_bc"
    """Offline agent of --dataset: masked_td3_bc or masked_iql (td3_bc and iql mean their masked variants)."""
    steps: int | None = None
    """Environment steps (None: the training preset's); with --dataset, gradient updates (None: the preset's
    offline_steps)."""
    learning_starts: int | None = None
    """Uniform random actions for this many first steps (None: the training preset's)."""
    group_size: int | None = None
    """Consecutive transitions per experience group (with --dataset: consecutive episodes; None: the preset's)."""
    ensemble_size: int | None = None
    """K, sub-networks per masked ensemble (None: the preset's)."""
    seed: int = 0
    """Seed of the networks, masks, environment and minibatches."""
    device: str = "cpu"
    """Torch device of the agent."""
    num_threads: int | None = None
    """Torch intra-op threads (None: the preset's)."""
    estimate_every: int = 0
    """Estimate every group's influence every this many env steps during training, with the preset's estimate
    settings (0: never; `trajlab influence estimate` estimates from the final agent)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Further masked SAC options (KEY=VALUE)."""
    plant_group: int | None = None
    """Plant a harmful experience group: the rewards of this group's transitions are stored multiplied by
    plant_reward_scale (as PIToD's paper does; online runs). Its influence should then rank it most harmful."""
    plant_reward_scale: float = -100.0
    """Factor of the planted group's rewards."""


@dataclass(frozen=True)
class InfluenceEstimateConfig:
    """`trajlab influence estimate`: influences of a trained run's groups."""

    run: str = ""
    """Run directory written by `trajlab influence train`."""
    out: str | None = None
    """Where the estimate goes (None: RUN/influence)."""
    preset: str = "quick"
    """Preset whose `estimate` section gives the defaults: configs/influence/<preset>.yaml."""
    n_eval: int | None = None
    """Deterministic evaluation episodes per mask (None: the preset's)."""
    groups: tuple[int, ...] | None = None
    """Group ids to estimate, comma-separated on the command line (None: every group the replay buffer holds)."""
    scores: tuple[str, ...] | None = None
    """Influences to estimate, comma-separated on the command line: return, bias, td, policy (None: the
    preset's)."""
    seed: int = 0
    """Seed of the evaluation episodes and the loss samples."""
    baseline: str | None = None
    """What the flipped masks' return and bias are compared with: all (every member, the paper's) or own (each
    group's own mask) (None: the preset's)."""
    overwrite: bool = False
    """Replace an estimate already in --out."""


@dataclass(frozen=True)
class InfluenceAmendConfig:
    """`trajlab influence amend`: the agent with one group switched off, as a normal checkpoint."""

    run: str = ""
    """Run directory written by `trajlab influence train`."""
    out: str = ""
    """Run directory of the amended agent."""
    estimate: str | None = None
    """Estimate directory whose influences choose the group (None: RUN/influence)."""
    by: str = "return"
    """Amend by the group whose removal gives the highest return or the lowest bias (return, bias)."""
    group: int | None = None
    """Switch off this group instead of the estimate's choice."""
    n_eval: int = 10
    """Evaluation episodes of the agent before and after."""
    seed: int = 0
    """Seed of the evaluation episodes."""
    overwrite: bool = False
    """Replace a run already in --out."""


def load_influence_preset(preset: str) -> InfluencePreset:
    return load_preset(InfluencePreset, "influence", preset)


# --- train -------------------------------------------------------------------------------------------------
def online_config(config: InfluenceTrainConfig) -> OnlineTrainConfig:
    """The masked SAC training run of `config` (checked: a group must fit in the run)."""
    preset = load_influence_preset(config.preset)
    overrides = dict(config.overrides)
    for name in ("group_size", "ensemble_size"):
        if getattr(config, name) is not None:
            overrides[name] = getattr(config, name)
    online = load_online_config(ALGO, preset.train_preset, env_id=config.env_id or preset.env_id,
                                total_steps=config.steps, learning_starts=config.learning_starts,
                                seed=config.seed, device=config.device,
                                num_threads=config.num_threads, overrides=overrides)
    group_size = agent_config_for(online).group_size
    if group_size > online.total_steps:
        raise TrajlabError(f"group size {group_size} is larger than the run's {online.total_steps} steps: every "
                           "transition would be in one group; lower --group-size or raise --steps")
    return online if config.plant_group is None else planted(online, config, group_size)


def planted(online: OnlineTrainConfig, config: InfluenceTrainConfig, group_size: int) -> OnlineTrainConfig:
    """The run with `plant_group`'s rewards scaled: group e holds transition ids [e * size, (e + 1) * size),
    which env steps e * size + 1 .. (e + 1) * size store."""
    groups = online.total_steps // group_size
    if not 0 <= config.plant_group < groups:
        raise TrajlabError(f"--plant-group {config.plant_group}: the run has groups 0..{groups - 1} "
                           f"({online.total_steps} steps of {group_size})")
    first = config.plant_group * group_size + 1
    return replace(online, reward_scale_steps=(first, first + group_size - 1), reward_scale=config.plant_reward_scale)


def train(config: InfluenceTrainConfig, *, out: str | Path | None = None, resume: bool = False,
          overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train masked SAC into a run directory that keeps its final replay buffer (with masks); with a dataset,
    a masked offline agent into a `trajlab train` run directory."""
    if config.dataset is not None:
        if config.plant_group is not None:
            raise TrajlabError("--plant-group plants a group in an online run; for a dataset, change the episodes' "
                               "rewards in the dataset itself")
        return train_offline(config, out=out, resume=resume, overwrite=overwrite, progress=progress)
    online = online_config(config)
    if config.estimate_every < 0:
        raise TrajlabError(f"estimate_every must be 0 or positive, got {config.estimate_every}")
    path = Path(out) if out is not None else Path("runs") / f"influence_{online.env_id}_seed{online.seed}"
    history = _History(path / HISTORY_FILE, online.env_id, estimate_config(InfluenceEstimateConfig(
        preset=config.preset, seed=config.seed)), resume=resume)
    callback = history.record if config.estimate_every else None
    if config.estimate_every:
        online = replace(online, callback_every=config.estimate_every)
    return run_online(online, out=path, resume=resume, overwrite=overwrite, progress=progress,
                      after_training=history.finish, callback=callback)


class _History:
    """Influence estimates taken during training, kept in the run directory after each one (atomic writes)."""

    def __init__(self, path: Path, env_id: str, settings: EstimateConfig, *, resume: bool) -> None:
        self.path, self.env_id, self.settings = path, env_id, settings
        self.entries: list[dict[str, Any]] = json.loads(path.read_text()) if resume and path.is_file() else []
        self.session_started = False

    def record(self, step: int, agent: Any, replay: ReplayBuffer) -> None:
        if not self.session_started:  # a resumed run redoes the estimates after its checkpoint
            self.entries = [entry for entry in self.entries if entry["step"] < step]
            self.session_started = True
        # estimates draw random numbers (stochastic bias rollouts); the training must not notice them
        with preserved_random_state(agent.device):
            found = estimate_influence(agent, replay, self.env_id, self.settings)
        self.entries.append({"step": step, "groups": [group.group for group in found.groups], "base": found.base,
                             "influence": {score: values.tolist() for score, values in found.influence.items()}})
        write_json_atomic(self.path, self.entries)

    def finish(self, run_dir: RunDirectory, result: OnlineTrainResult, config: OnlineTrainConfig) -> None:
        from trajlab.commands.train import plot_learning_curve

        result.replay.save(run_dir.path / REPLAY_FILE)
        plot_learning_curve(run_dir, result, config)
        if self.entries:
            influence_heatmap(run_dir.plots / "influence_heatmap.png", self.entries, "return")


OFFLINE_ALGOS = {"masked_td3_bc": "masked_td3_bc", "masked_iql": "masked_iql", "td3_bc": "masked_td3_bc",
                 "iql": "masked_iql"}
"""--algo of `train --dataset` -> the masked agent trained (the plain names mean their masked variants)."""


def offline_train_config(config: InfluenceTrainConfig, out: str | Path | None, *, resume: bool,
                         overwrite: bool, progress: bool) -> Any:
    """The `trajlab train` run of a masked offline agent on `config.dataset` (checked: at least 2 groups)."""
    from trajlab.algos.base import AGENTS
    from trajlab.data.dataset import TransitionDataset
    from trajlab.training.offline import TrainConfig

    algo = OFFLINE_ALGOS.get(config.algo)
    if algo is None:
        raise TrajlabError(f"influence train --dataset: --algo {config.algo} has no masked variant; "
                           f"choose from {', '.join(OFFLINE_ALGOS)}")
    if config.estimate_every:
        raise TrajlabError("--estimate-every is for online runs; estimate an offline run with "
                           "`trajlab influence estimate RUN`")
    assert config.dataset is not None
    if not Path(config.dataset).is_file():
        raise TrajlabError(f"{config.dataset}: dataset file not found")
    preset = load_influence_preset(config.preset)
    overrides = dict(config.overrides)
    for name in ("group_size", "ensemble_size"):
        if getattr(config, name) is not None:
            overrides[name] = getattr(config, name)
    values, _ = split_runtime_options(overrides, where="--set")
    agent_config = load_preset(AGENTS.get(algo).config_class, f"offline/{algo}", preset.offline_preset, **values)
    episodes = TransitionDataset.load(config.dataset).num_episodes
    if -(-episodes // agent_config.group_size) < 2:
        raise TrajlabError(f"group size {agent_config.group_size} puts all {episodes} episodes of the dataset in "
                           "one group; lower --group-size")
    path = Path(out) if out is not None else Path("runs") / f"influence_{algo}_{Path(config.dataset).stem}"
    return TrainConfig(algo=algo, dataset=config.dataset, steps=config.steps or preset.offline_steps,
                       preset=preset.offline_preset, overrides=overrides, seed=config.seed, device=config.device,
                       env_id=config.env_id, out=str(path), resume=resume, overwrite=overwrite,
                       threads=config.num_threads, progress=progress)


def train_offline(config: InfluenceTrainConfig, *, out: str | Path | None, resume: bool, overwrite: bool,
                  progress: bool) -> dict[str, Any]:
    """`trajlab train` with a masked offline agent: each row of the dataset trains its episode group's mask."""
    from trajlab.training.offline import run as run_offline

    return run_offline(offline_train_config(config, out, resume=resume, overwrite=overwrite, progress=progress))


# --- estimate ----------------------------------------------------------------------------------------------
def estimate_config(config: InfluenceEstimateConfig) -> EstimateConfig:
    values = {**load_influence_preset(config.preset).estimate, "seed": config.seed}
    for name in ("n_eval", "scores", "baseline"):
        if getattr(config, name) is not None:
            values[name] = getattr(config, name)
    settings = from_dict(EstimateConfig, values, where=f"influence/{config.preset} estimate")
    check_estimate_config(settings)  # a bad setting stops before any work
    return settings


def estimate(config: InfluenceEstimateConfig) -> dict[str, Any]:
    """Estimate influences and write them (result.json, plots, report.html); returns result.json's content."""
    settings = estimate_config(config)
    if is_offline_run(config.run):
        return estimate_offline_run(config, settings)
    agent, replay, env_id = load_masked_run(config.run)
    select_groups(replay, None if config.groups is None else list(config.groups))  # unknown ids: before any write
    out = Path(config.out) if config.out is not None else Path(config.run) / ESTIMATE_DIR
    check_free(out, config.overwrite)
    stored = {"run": config.run, "estimate": to_dict(settings), "groups": config.groups}
    found = estimate_influence(agent, replay, env_id, settings,
                               groups=None if config.groups is None else list(config.groups))
    run_dir = RunDirectory.create(out, stored, command="influence estimate", overwrite=config.overwrite)
    result = estimate_result(found, config.run, env_id, replay, settings)
    result["member_coupling"] = agent.config.member_coupling
    result["plots"] = write_influence_report(run_dir, result)
    result["run_dir"] = str(run_dir.path)
    run_dir.write_result(result)
    return result


def estimate_result(found: Estimate, run: str, env_id: str, replay: ReplayBuffer,
                    settings: EstimateConfig) -> dict[str, Any]:
    """result.json of an estimate: per group its id ranges and influences, the all-member scores, rankings."""
    assert replay.group_masks is not None
    groups = [{"group": group.group, "transition_ids": list(group.transition_ids),
               "episode_ids": list(group.episode_ids), "size": group.size,
               "mask": group.mask.astype(int).tolist(),
               "influence": {score: float(values[index]) for score, values in found.influence.items()}}
              for index, group in enumerate(found.groups)]
    ranked = found.ranked("return") if "return" in found.influence else []
    return {"run": run, "env_id": env_id, "group_size": replay.group_masks.group_size,
            "num_members": replay.group_masks.num_members, "scores": list(found.influence),
            "base": found.base, "groups": groups, "most_harmful": ranked[:1], "most_helpful": ranked[-1:],
            "settings": to_dict(settings)}


def estimate_offline_run(config: InfluenceEstimateConfig, settings: EstimateConfig) -> dict[str, Any]:
    """`estimate` of an offline masked run: influence of each episode group of the run's dataset."""
    from trajlab.core.io import sha256_file

    agent, dataset, env_id, dataset_path = load_offline_run(config.run)
    groups = None if config.groups is None else list(config.groups)
    select_episode_groups(dataset, agent.episode_group_masks, groups)  # unknown ids: before any write
    scores = offline_scores(settings, env_id, explicit=config.scores is not None)
    out = Path(config.out) if config.out is not None else Path(config.run) / ESTIMATE_DIR
    check_free(out, config.overwrite)
    found = estimate_offline(agent, dataset, env_id, settings, scores, groups)
    stored = {"run": config.run, "estimate": to_dict(settings), "groups": config.groups, "scores": list(scores)}
    run_dir = RunDirectory.create(out, stored, command="influence estimate", overwrite=config.overwrite)
    masks = agent.episode_group_masks
    result = {"run": config.run, "kind": "offline", "env_id": env_id, "dataset": str(dataset_path.resolve()),
              "dataset_sha256": sha256_file(dataset_path), "group_unit": "episodes",
              "group_size": masks.group_size, "num_members": masks.num_members,
              "member_coupling": agent.config.member_coupling, "scores": list(found.influence),
              "base": found.base, "groups": _group_entries(found), **_rankings(found), "settings": to_dict(settings)}
    result["plots"] = write_influence_report(run_dir, result)
    result["run_dir"] = str(run_dir.path)
    run_dir.write_result(result)
    return result


def _group_entries(found: Estimate) -> list[dict[str, Any]]:
    return [{"group": group.group, "episodes": list(group.episodes or ()), "episode_ids": list(group.episode_ids),
             "transition_ids": list(group.transition_ids), "size": group.size,
             "mask": group.mask.astype(int).tolist(),
             "influence": {score: float(values[index]) for score, values in found.influence.items()}}
            for index, group in enumerate(found.groups)]


def _rankings(found: Estimate) -> dict[str, list[int]]:
    """Most harmful and most helpful group by return, else by TD self-influence (the first score there is)."""
    score = "return" if "return" in found.influence else next(iter(found.influence))
    ranked = found.ranked(score)
    return {"most_harmful": ranked[:1], "most_helpful": ranked[-1:]}


def check_free(out: Path, overwrite: bool) -> None:
    """Refuse a taken output folder before the work, not after it (RunDirectory.create would, but late)."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TrajlabError(f"{out}: a run is already there (use --overwrite or another --out)")


# --- amend -------------------------------------------------------------------------------------------------
def amend(config: InfluenceAmendConfig) -> dict[str, Any]:
    """Switch off one group (the estimate's best removal, or `group`) and write the agent as a checkpoint."""
    if not config.out:
        raise TrajlabError("amend needs --out, the run directory of the amended agent")
    agent, select, env_id = _amend_source(config.run)
    group = _amend_group(config, select)
    check_free(Path(config.out), config.overwrite)
    fixed = amended(agent, group)
    before, after = (evaluate(candidate, env_id, episodes=config.n_eval, seed=config.seed)
                     for candidate in (agent, fixed))
    run_dir = RunDirectory.create(config.out, to_dict(config), command="influence amend", overwrite=config.overwrite)
    checkpoint = save_agent(run_dir.checkpoint_path("final"), fixed,
                            {"env_id": env_id, "amended_from": config.run, "removed_group": group.group})
    result = {"run": config.run, "env_id": env_id, "group": group.group, "by": config.by,
              "transition_ids": list(group.transition_ids), "deploy_mask": (~group.mask).astype(int).tolist(),
              "episodes": None if group.episodes is None else list(group.episodes),
              "return_before": before.mean_return, "return_after": after.mean_return,
              "checkpoint": str(checkpoint), "run_dir": str(run_dir.path)}
    run_dir.write_result(result)
    return result


def _amend_source(run: str) -> tuple[Any, Callable[[list[int] | None], list[Group]], str]:
    """(agent, group ids -> groups, env id) of an online run (replay-buffer groups) or an offline one (episode
    groups of its dataset; it needs a known environment to measure the return before and after)."""
    if not is_offline_run(run):
        agent, replay, env_id = load_masked_run(run)
        return agent, lambda wanted: select_groups(replay, wanted), env_id
    agent, dataset, env_id, _ = load_offline_run(run)
    if env_id is None:
        raise TrajlabError(f"{run}: its dataset names no known environment, so amending has no return to compare")
    return agent, lambda wanted: select_episode_groups(dataset, agent.episode_group_masks, wanted), env_id


def _amend_group(config: InfluenceAmendConfig, select: Callable[[list[int] | None], list[Group]]) -> Group:
    if config.group is not None:
        return select([config.group])[0]
    source = Path(config.estimate) if config.estimate is not None else Path(config.run) / ESTIMATE_DIR
    saved = RunDirectory.open(source).result()
    groups = select([item["group"] for item in saved["groups"]])
    values = {score: np.asarray([item["influence"][score] for item in saved["groups"]]) for score in saved["scores"]}
    return best_removal(Estimate(groups, saved["base"], values), by=config.by)


# --- leave-one-out -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InfluenceLooConfig:
    """`trajlab influence loo`: leave-one-out influences, the reference for PIToD's."""

    run: str = ""
    """Run directory written by `trajlab influence train`."""
    out: str | None = None
    """Where the result goes (None: RUN/loo)."""
    estimate: str | None = None
    """PIToD estimate to compare with (None: RUN/influence when it is there)."""
    groups: tuple[int, ...] | None = None
    """Group ids to leave out, comma-separated on the command line (None: every group the replay buffer holds)."""
    updates: int = 75_000
    """Updates of each fresh agent (the paper: 75,000 train() calls, 300k updates at UTD 4)."""
    n_eval: int = 10
    """Deterministic evaluation episodes of each retrained agent."""
    seed: int = 0
    """Seed of the fresh agents, their minibatches and evaluations."""
    executor: str = "local"
    """Where the retrainings run: local (process pool), ray, or serial (in this process)."""
    repeats: int = 1
    """Independent retrainings per group (and of the reference), averaged; with 2 or more, result.json also
    says how well the repeats agree with each other (repeat_agreement)."""
    overwrite: bool = False
    """Replace a result already in --out."""


def loo(config: InfluenceLooConfig, *, progress: bool = True) -> dict[str, Any]:
    """Leave-one-out influence of every group, with its rank correlation to PIToD's when an estimate exists."""
    from trajlab.influence.loo import LooConfig, leave_one_out

    if is_offline_run(config.run):
        raise TrajlabError(f"{config.run} is an offline run: leaving a group out is retraining without its "
                           "episodes, `trajlab forget --method retrain --episodes-from RUN --worst N`")
    _, replay, env_id = load_masked_run(config.run)
    select_groups(replay, None if config.groups is None else list(config.groups))
    out = Path(config.out) if config.out is not None else Path(config.run) / "loo"
    check_free(out, config.overwrite)
    settings = LooConfig(updates=config.updates, n_eval=config.n_eval, seed=config.seed, executor=config.executor,
                         repeats=config.repeats)
    found = leave_one_out(config.run, settings, None if config.groups is None else list(config.groups),
                          progress=progress)
    run_dir = RunDirectory.create(out, to_dict(config), command="influence loo", overwrite=config.overwrite)
    result = {"run": config.run, "env_id": env_id, "reference_return": found.reference_return,
              "groups": [{"group": group, "return": float(value), "influence": float(influence),
                          "influence_per_repeat": [float(item) for item in per_repeat]}
                         for group, value, influence, per_repeat in zip(found.groups, found.returns, found.influence,
                                                                        found.repeat_influence.T)],
              "repeats": config.repeats, "reference_return_per_repeat": found.reference_returns.tolist(),
              "repeat_agreement": found.repeat_agreement(),
              **_compare_with_pitod(config, found.groups, found.influence), "run_dir": str(run_dir.path)}
    run_dir.write_result(result)
    return result


def _compare_with_pitod(config: InfluenceLooConfig, groups: list[int], influence: np.ndarray) -> dict[str, Any]:
    """PIToD's return influence of the same groups and the Spearman rank correlation (None without an estimate)."""
    source = Path(config.estimate) if config.estimate is not None else Path(config.run) / ESTIMATE_DIR
    if config.estimate is None and not (source / "result.json").is_file():
        return {"pitod_influence": None, "spearman": None}
    saved = {item["group"]: item["influence"].get("return") for item in RunDirectory.open(source).result()["groups"]}
    pitod = [saved.get(group) for group in groups]
    if any(value is None for value in pitod) or len(groups) < 2:
        return {"pitod_influence": pitod, "spearman": None}
    from scipy.stats import spearmanr

    correlation = float(spearmanr(pitod, influence).statistic)
    return {"pitod_influence": pitod, "spearman": None if np.isnan(correlation) else correlation}


# --- the forget chain --------------------------------------------------------------------------------------
def worst_episodes(source: str | Path, worst: int, by: str, dataset: str | Path) -> tuple[list[int], dict[str, Any]]:
    """Episode ids of the `worst` most harmful groups of an offline influence estimate, and the record of the
    choice for the deletion certificate (`trajlab forget --episodes-from SOURCE --worst N --by SCORE`).

    SOURCE is an estimate directory or the offline influence run holding one (RUN/influence). Harmful means the
    highest influence on `by` (return: the agent does better without the group; td, policy: the group's own
    loss rises most without it). `dataset` must be the very file the estimate was made on.
    """
    from trajlab.core.io import sha256_file

    estimate_dir = _estimate_dir(Path(source))
    saved = RunDirectory.open(estimate_dir).result()
    if saved.get("kind") != "offline":
        raise TrajlabError(f"{source}: not an estimate of an offline run (its groups are not dataset episodes); "
                           "run `trajlab influence estimate` on a `trajlab influence train --dataset` run")
    if by not in saved["scores"]:
        raise TrajlabError(f"--by {by}: the estimate in {estimate_dir} has {', '.join(saved['scores'])}")
    groups = saved["groups"]
    if not 1 <= worst <= len(groups):
        raise TrajlabError(f"--worst {worst}: the estimate in {estimate_dir} has {len(groups)} groups; "
                           f"give 1..{len(groups)}")
    if sha256_file(dataset) != saved["dataset_sha256"]:
        raise TrajlabError(f"{dataset} is not the dataset of influence run {saved['run']} ({saved['dataset']})")
    ranked = sorted(groups, key=lambda group: -group["influence"][by])[:worst]  # sorted is stable: ties by id
    episodes = sorted(episode for group in ranked for episode in group["episodes"])
    record = {"episodes_from": str(Path(source).resolve()), "estimate": str(estimate_dir.resolve()),
              "influence_run": saved["run"], "by": by, "worst": worst,
              "groups": [group["group"] for group in ranked],
              "influence": [group["influence"][by] for group in ranked], "episode_ids": episodes}
    return episodes, record


def _estimate_dir(source: Path) -> Path:
    """SOURCE itself when it holds an estimate's result.json, else SOURCE/influence; anything else is an error."""
    for candidate in (source, source / ESTIMATE_DIR):
        if (candidate / "result.json").is_file() and (candidate / "config.yaml").is_file() and \
                RunDirectory.open(candidate).config().get("estimate") is not None:
            return candidate
    raise TrajlabError(f"--episodes-from {source}: no influence estimate there (run `trajlab influence estimate "
                       f"{source}` on an offline influence run first)")


# --- the quickstart's step -----------------------------------------------------------------------------------
def quickstart_step(out_dir: Path, *, seed: int, planted_group: int = 3, steps: int = 10_000) -> dict[str, Any]:
    """The quickstart's influence tour: a masked SAC run at the quick preset's sizes (Pendulum-v1), long enough
    to learn the task (the preset's 4,000 steps do not), with one planted harmful group (its rewards x -100),
    every group's influence, and the agent amended by switching the most harmful group off.

    The tour trains independent members and scores each group against its own mask: with the paper's coupling
    the planted group reaches its flipped half and ranks in the top 10% in about half the seeds
    (docs/benchmarks.md)."""
    import time

    started = time.perf_counter()
    run = Path(out_dir) / "run"
    train(InfluenceTrainConfig(preset="quick", seed=seed, steps=steps, plant_group=planted_group,
                               overrides={"member_coupling": "independent"}), out=run, progress=False)
    found = estimate(InfluenceEstimateConfig(run=str(run), preset="quick", seed=seed, baseline="own"))
    fixed = amend(InfluenceAmendConfig(run=str(run), out=str(Path(out_dir) / "amended"), seed=seed))
    ranked = [group["group"] for group in sorted(found["groups"], key=lambda group: -group["influence"]["return"])]
    rank = ranked.index(planted_group) + 1
    sentences = [
        f"A masked SAC agent (turn-over dropout: each group of {found['group_size']} experiences trains only half "
        f"of its {found['num_members']} sub-networks, each sub-network an agent of its own) learned "
        f"{found['env_id']} from {len(ranked)} experience groups; group {planted_group} was planted with its "
        "rewards multiplied by -100.",
        f"Scoring every group's flipped mask (the sub-networks that never trained on it) against its own mask ranks "
        f"the planted group {_ordinal(rank)} most harmful of {len(ranked)}, from one training run instead of "
        f"{len(ranked)} retrainings.",
        f"Switching the most harmful group ({fixed['group']}) off changed the return from "
        f"{fixed['return_before']:.1f} to {fixed['return_after']:.1f}.",
    ]
    plot = influence_plot(Path(out_dir) / "plots" / "influence_planted.png", found, "return", planted=planted_group)
    return {"title": "Which experiences shaped the agent (PIToD)", "sentences": sentences, "plots": [str(plot)],
            "report": str(run / ESTIMATE_DIR / "report.html"), "planted_group": planted_group, "planted_rank": rank,
            "amended_group": fixed["group"], "return_before": fixed["return_before"],
            "return_after": fixed["return_after"], "wall_time_s": time.perf_counter() - started}


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
