"""`trajlab data generate`: D4RL-style datasets from a SAC behaviour policy trained here.

Stages, each kept in a work folder so that a rerun skips what is done and continues what was interrupted:

1. behaviour: SAC trains online (`train_online`, resumable); every `snapshot_every` env steps the policy is
   saved with its evaluation return; the replay buffer is saved at the end. The expert is the best snapshot;
   the random and expert returns used for normalised scores are then measured on fresh episodes.
2. collection: the requested quality is collected (random: uniform actions; medium: the snapshot whose return
   is closest to `medium_fraction` of the way from the random to the expert return; expert; medium-replay:
   the replay buffer up to the medium snapshot's step; medium-expert: medium and expert data, ids disjoint).

The work folder depends on env, preset and seed only, so every quality of one env/preset/seed shares the
trained behaviour policies. The output file is written atomically, once, at the end.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import trajlab
from trajlab.commands.datasets import refuse_existing
from trajlab.core.config import replace, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.io import write_json_atomic
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.core.spec import SpaceSpec
from trajlab.data.collect import collect
from trajlab.data.dataset import TransitionDataset
from trajlab.envs.registry import env_info, make

QUALITIES = ("random", "medium", "expert", "medium-replay", "medium-expert")
_BEHAVIOUR_FIELDS = ("env_id", "seed", "sac_preset", "sac_steps", "snapshot_every", "eval_episodes",
                     "reference_episodes", "deterministic_behaviour", "learning_starts", "sac_overrides")
BEHAVIOUR_FILE = "behaviour.json"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate and how hard to train the behaviour policy (presets: configs/data/*.yaml)."""

    env_id: str = "Hopper-v5"
    """Environment id from the trajlab registry."""
    quality: str = "medium"
    """random, medium, expert, medium-replay or medium-expert (as in D4RL)."""
    out: str = ""
    """Dataset file to write (trajlab HDF5)."""
    preset: str = "quick"
    """Preset: configs/data/<preset>.yaml (quick: minutes on 2 CPU cores; bench: for benchmarks, about an hour
    per env; paper: D4RL sizes); part of the work folder's name."""
    seed: int = 0
    """Seed of the behaviour training, the evaluations and the collection."""
    sac_preset: str = "quick"
    """Online SAC preset (configs/online/sac/<name>.yaml) for the behaviour policy."""
    sac_steps: int = 25_000
    """Environment steps of SAC training."""
    snapshot_every: int = 2_500
    """Save and evaluate the policy every this many env steps (must divide sac_steps)."""
    dataset_size: int = 30_000
    """Transitions collected per policy (medium-expert holds twice this; medium-replay what the buffer held)."""
    medium_fraction: float = 1 / 3
    """Medium = the snapshot whose return is closest to random + medium_fraction * (expert - random)."""
    eval_episodes: int = 5
    """Episodes to evaluate each snapshot."""
    reference_episodes: int = 10
    """Episodes to measure the random and expert reference returns."""
    deterministic_behaviour: bool = False
    """Collect (and evaluate) with the policy's mean action instead of sampling from it."""
    learning_starts: int | None = None
    """Uniform random steps before SAC updates start (None: the SAC preset's value)."""
    sac_overrides: dict[str, Any] = field(default_factory=dict)
    """SAC agent options replacing the SAC preset's (e.g. {"hidden": [64, 64]})."""
    work_dir: str | None = None
    """Folder for behaviour policies; None: next to `out`, named after env, preset, seed and settings."""
    device: str = "cpu"
    """Torch device of the SAC training: cpu or cuda."""
    num_threads: int | None = None
    """Torch CPU threads (default: torch's choice); 1 is faster when other jobs share the cores."""
    overwrite: bool = False
    """Replace an existing output file (default: refuse)."""


def run(config: GenerateConfig, *, progress: bool = True) -> dict[str, Any]:
    """Generate the dataset `config` asks for; returns a summary (the output file's path, sizes, returns)."""
    _validate(config)
    set_threads(config.num_threads)
    work = work_folder(config)
    behaviour = train_behaviour(config, work, progress=progress)
    dataset = collect_quality(config, behaviour, work)
    path = dataset.save(config.out)
    summary = dataset.summary()
    return {
        "out": str(path), "work_dir": str(work), "env_id": config.env_id, "quality": config.quality,
        "episodes": summary["episodes"], "transitions": summary["transitions"],
        "return_mean": summary["return_mean"], "behaviour_return": dataset.metadata.get("behaviour_return"),
        "random_return": behaviour["random_return"], "expert_return": behaviour["expert_return"],
        "medium_step": medium_snapshot(behaviour, config.medium_fraction)["step"],
        "expert_step": behaviour["expert_step"],
    }


def work_folder(config: GenerateConfig) -> Path:
    """`work_dir`, else `<out folder>/<env>-<preset>-seed<seed>-<key>.work`, where the key hashes every setting
    that shapes the behaviour policies, so all qualities of one setting share a folder and others never collide."""
    if config.work_dir:
        return Path(config.work_dir)
    shaping = {name: getattr(config, name) for name in _BEHAVIOUR_FIELDS}
    key = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:8]
    return Path(config.out).parent / f"{config.env_id}-{config.preset}-seed{config.seed}-{key}.work"


def _validate(config: GenerateConfig) -> None:
    env_info(config.env_id)
    if config.quality not in QUALITIES:
        raise TrajlabError(f"unknown quality {config.quality!r}; choose one of {', '.join(QUALITIES)}")
    if not config.out:
        raise TrajlabError("no output path (--out)")
    refuse_existing(Path(config.out), config.overwrite)
    if not 0.0 < config.medium_fraction < 1.0:
        raise TrajlabError(f"medium_fraction must be in (0, 1), got {config.medium_fraction}")
    for name in ("sac_steps", "snapshot_every", "dataset_size", "eval_episodes", "reference_episodes"):
        if getattr(config, name) <= 0:
            raise TrajlabError(f"{name} must be positive, got {getattr(config, name)}")
    if config.sac_steps % config.snapshot_every:
        raise TrajlabError(f"snapshot_every ({config.snapshot_every}) must divide sac_steps ({config.sac_steps})")
    if config.sac_steps < 2 * config.snapshot_every:
        raise TrajlabError("sac_steps must allow at least two snapshots (a medium and an expert policy)")
    if config.learning_starts is not None and not 0 <= config.learning_starts < config.sac_steps:
        raise TrajlabError(f"learning_starts must be in [0, sac_steps), got {config.learning_starts}")


# --- stage 1: the behaviour policy ---------------------------------------------------------------------------
def train_behaviour(config: GenerateConfig, work: Path, *, progress: bool = True) -> dict[str, Any]:
    """Train SAC with snapshots (or reuse a finished work folder); returns the content of behaviour.json."""
    from trajlab.core.rundir import RunDirectory
    from trajlab.training.online import agent_config_for, build_agent, train_online

    train_config = _train_config(config)
    agent_config = agent_config_for(train_config)
    _claim_work_folder(config, work, {"train": to_dict(train_config), "agent": to_dict(agent_config)},
                       defaults={"train": to_dict(type(train_config)()), "agent": to_dict(type(agent_config)())})
    if (work / BEHAVIOUR_FILE).is_file():
        return json.loads((work / BEHAVIOUR_FILE).read_text())
    resume = (work / "train" / "config.yaml").is_file()
    run_dir = RunDirectory.create(work / "train", {"train": to_dict(train_config), "agent": to_dict(agent_config)},
                                  command="data generate (behaviour)", resume=resume)
    snapshots = _Snapshots(config, work)
    agent = build_agent(train_config, agent_config)
    train_online(agent, train_config, run=run_dir, callback=snapshots, progress=progress, resume=resume,
                 callback_every=config.snapshot_every)
    return _measure_references(config, work, snapshots.table())


def _train_config(config: GenerateConfig) -> Any:
    from trajlab.training.online import load_online_config

    train_config = load_online_config(
        "sac", config.sac_preset, env_id=config.env_id, total_steps=config.sac_steps, seed=config.seed,
        device=config.device, num_threads=config.num_threads, eval_every=0, checkpoint_every=config.snapshot_every,
        learning_starts=config.learning_starts, overrides=dict(config.sac_overrides) or None,
    )
    if train_config.buffer_size < config.sac_steps:  # medium-replay needs every transition of the training
        train_config = replace(train_config, buffer_size=config.sac_steps)
    return train_config


def _claim_work_folder(config: GenerateConfig, work: Path, training: dict[str, Any], *,
                       defaults: dict[str, dict[str, Any]]) -> None:
    """Write the settings that shape the behaviour policies, or check that a reused folder has the same.

    A training or agent setting the saved file lacks counts as the same when it has its default (`defaults`,
    per section): a setting added to trajlab after the folder was made, at the value that trains as before."""
    settings = {
        "env_id": config.env_id, "seed": config.seed, "snapshot_every": config.snapshot_every,
        "eval_episodes": config.eval_episodes, "reference_episodes": config.reference_episodes,
        "deterministic_behaviour": config.deterministic_behaviour, **training,
    }
    settings = json.loads(json.dumps(settings, default=str))
    for where_it_runs in ("device", "num_threads"):  # these change speed, not what is trained
        settings["train"].pop(where_it_runs, None)
    path = work / SETTINGS_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        settings = _without_added_defaults(settings, saved, json.loads(json.dumps(defaults, default=str)))
        changed = sorted(key for key in set(saved) | set(settings) if saved.get(key) != settings.get(key))
        if changed:
            raise TrajlabError(f"{work}: holds behaviour policies trained with other settings ({', '.join(changed)}); "
                               "use another --work-dir or remove that folder")
        return
    if work.exists() and any(work.iterdir()):
        raise TrajlabError(f"{work}: exists but is not a trajlab generate work folder; use another --work-dir")
    write_json_atomic(path, settings)


def _without_added_defaults(settings: dict[str, Any], saved: dict[str, Any],
                            defaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    trimmed = dict(settings)
    for section, section_defaults in defaults.items():
        known = saved.get(section) or {}
        trimmed[section] = {key: value for key, value in settings[section].items()
                            if key in known or value != section_defaults.get(key, object())}
    return trimmed


class _Snapshots:
    """The training callback: every `snapshot_every` steps, save and evaluate the policy; at the end, the replay."""

    def __init__(self, config: GenerateConfig, work: Path) -> None:
        self.config, self.work = config, work
        (work / "snapshots").mkdir(parents=True, exist_ok=True)

    def __call__(self, step: int, agent: Any, replay: Any) -> None:
        from trajlab.algos.base import save_agent

        result = _evaluate(agent, self.config, self.config.eval_episodes, "snapshot-eval")
        save_agent(self.path(step), agent, {"step": step, "env_id": self.config.env_id,
                                            "eval_return": result.mean_return,
                                            "eval_returns": result.returns.tolist()})
        if step == self.config.sac_steps:
            replay.to_dataset({"env_id": self.config.env_id}, first=0, last=step).save(self.work / "replay.hdf5")

    def path(self, step: int) -> Path:
        return self.work / "snapshots" / f"step_{step:09d}.safetensors"

    def table(self) -> list[dict[str, Any]]:
        from trajlab.core.checkpoint import read_checkpoint_metadata

        rows = []
        for step in range(self.config.snapshot_every, self.config.sac_steps + 1, self.config.snapshot_every):
            metadata = read_checkpoint_metadata(self.path(step))
            rows.append({"step": step, "eval_return": float(metadata["eval_return"]),
                         "checkpoint": str(self.path(step).relative_to(self.work))})
        return rows


def _measure_references(config: GenerateConfig, work: Path, snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Pick the expert (best snapshot) and measure the random and expert returns on fresh episodes."""
    from trajlab.algos.base import start_from_checkpoint

    expert = max(reversed(snapshots), key=lambda row: row["eval_return"])  # ties: the later snapshot
    expert_agent = start_from_checkpoint(work / expert["checkpoint"], device=config.device)
    random_policy = UniformPolicy(_env_spec(config.env_id), derive_seed(config.seed, "random-policy"))
    behaviour = {
        "env_id": config.env_id, "seed": config.seed, "snapshots": snapshots, "replay": "replay.hdf5",
        "expert_step": expert["step"], "expert_checkpoint": expert["checkpoint"],
        "expert_return": _evaluate(expert_agent, config, config.reference_episodes, "reference").mean_return,
        "random_return": _evaluate(random_policy, config, config.reference_episodes, "reference").mean_return,
        "trajlab_version": trajlab.__version__,
    }
    write_json_atomic(work / BEHAVIOUR_FILE, behaviour)
    return behaviour


def medium_snapshot(behaviour: dict[str, Any], medium_fraction: float) -> dict[str, Any]:
    """The snapshot (other than the expert) whose return is closest to the medium target; ties: the earlier."""
    random_return, expert_return = behaviour["random_return"], behaviour["expert_return"]
    target = random_return + medium_fraction * (expert_return - random_return)
    candidates = [row for row in behaviour["snapshots"] if row["step"] != behaviour["expert_step"]]
    return min(candidates or behaviour["snapshots"], key=lambda row: abs(row["eval_return"] - target))


class UniformPolicy:
    """Uniform random actions in the action space, behind the agent's `act` interface."""

    def __init__(self, spec: SpaceSpec, seed: int) -> None:
        self.spec, self.rng = spec, np.random.default_rng(seed)

    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        count = len(np.atleast_2d(observations))
        if self.spec.discrete:
            return self.rng.integers(0, self.spec.action_dim, size=count)
        return self.rng.uniform(self.spec.action_low, self.spec.action_high,
                                size=(count, self.spec.action_dim)).astype(np.float32)


def _evaluate(policy: Any, config: GenerateConfig, episodes: int, purpose: str) -> Any:
    """Evaluate with the collection's action mode, on a private torch RNG so training is not perturbed."""
    import torch

    from trajlab.eval.rollouts import evaluate

    seed = derive_seed(config.seed, purpose) % 2**31
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return evaluate(policy, config.env_id, episodes=episodes, seed=seed,
                        deterministic=config.deterministic_behaviour)


def _env_spec(env_id: str) -> SpaceSpec:
    env = make(env_id)
    try:
        return SpaceSpec.from_env(env)
    finally:
        env.close()


# --- stage 2: collection ---------------------------------------------------------------------------------------
def collect_quality(config: GenerateConfig, behaviour: dict[str, Any], work: Path) -> TransitionDataset:
    """The dataset of `config.quality`, with its generation metadata."""
    medium = medium_snapshot(behaviour, config.medium_fraction)
    expert = {"step": behaviour["expert_step"], "checkpoint": behaviour["expert_checkpoint"],
              "eval_return": behaviour["expert_return"]}
    if config.quality == "random":
        dataset, sources = _collected(config, work, None), []
        behaviour_return = behaviour["random_return"]
    elif config.quality in ("medium", "expert"):
        chosen = medium if config.quality == "medium" else expert
        dataset, sources, behaviour_return = _collected(config, work, chosen), [chosen], chosen["eval_return"]
    elif config.quality == "medium-replay":
        if not (work / behaviour["replay"]).is_file():  # a folder rebuilt from committed snapshots has none
            raise TrajlabError(f"{work}: has no {behaviour['replay']} (the SAC replay buffer medium-replay is cut "
                               "from); use a work folder whose SAC training ran to the end")
        replay = TransitionDataset.load(work / behaviour["replay"])
        dataset = replay.subset_transitions(np.arange(medium["step"]))
        sources, behaviour_return = [medium], _finished_episode_mean_return(dataset)
    else:
        dataset = _disjoint_concat(_collected(config, work, medium), _collected(config, work, expert))
        sources = [medium, expert]
        behaviour_return = (medium["eval_return"] + behaviour["expert_return"]) / 2
    return dataset.with_metadata(**_metadata(config, behaviour, medium, sources, behaviour_return))


def _collected(config: GenerateConfig, work: Path, snapshot: dict[str, Any] | None) -> TransitionDataset:
    """Roll out a snapshot (None: uniform actions), cached in the work folder for other qualities and reruns."""
    import torch

    from trajlab.algos.base import start_from_checkpoint

    name = "random" if snapshot is None else f"step{snapshot['step']}"
    cached = work / "collected" / f"{name}-n{config.dataset_size}.hdf5"
    if cached.is_file():
        return TransitionDataset.load(cached)
    act = None if snapshot is None else start_from_checkpoint(work / snapshot["checkpoint"], device=config.device).act
    seed = derive_seed(config.seed, "collect", name) % 2**31
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dataset = collect(act, config.env_id, num_transitions=config.dataset_size, seed=seed,
                          deterministic=config.deterministic_behaviour)
    dataset.save(cached)
    return dataset


def _finished_episode_mean_return(dataset: TransitionDataset) -> float:
    """Mean return of the episodes that ended (the episode cut at the window's end would bias it down)."""
    returns = dataset.episode_returns()
    last_rows = np.cumsum(dataset.episode_lengths()) - 1
    finished = dataset.terminals[last_rows] | dataset.timeouts[last_rows]
    return float(np.mean(returns[finished] if finished.any() else returns))


def _disjoint_concat(first: TransitionDataset, second: TransitionDataset) -> TransitionDataset:
    """first then second, with second's ids shifted past first's (both count from 0 when collected)."""
    shifted = TransitionDataset(
        observations=second.observations, actions=second.actions, rewards=second.rewards,
        next_observations=second.next_observations, terminals=second.terminals, timeouts=second.timeouts,
        episode_ids=second.episode_ids + int(first.episode_ids.max()) + 1,
        transition_ids=second.transition_ids + int(first.transition_ids.max()) + 1,
        costs=second.costs, metadata=second.metadata,
    )
    return first.concat(shifted)


def _metadata(config: GenerateConfig, behaviour: dict[str, Any], medium: dict[str, Any],
              sources: list[dict[str, Any]], behaviour_return: float) -> dict[str, Any]:
    spec = _env_spec(config.env_id)
    work = work_folder(config).resolve()
    return {
        "env_id": config.env_id, "quality": config.quality, "source": "trajlab generate", "seed": config.seed,
        "preset": config.preset, "trajlab_version": trajlab.__version__, "sac_steps": config.sac_steps,
        "behaviour_return": behaviour_return, "random_return": behaviour["random_return"],
        "expert_return": behaviour["expert_return"], "medium_return": medium["eval_return"],
        "medium_fraction": config.medium_fraction, "behaviour_steps": [row["step"] for row in sources],
        "behaviour_checkpoints": [str(work / row["checkpoint"]) for row in sources],
        "deterministic_behaviour": config.deterministic_behaviour,
        **({} if spec.discrete else {"action_low": list(spec.action_low or ()),
                                     "action_high": list(spec.action_high or ())}),
    }
