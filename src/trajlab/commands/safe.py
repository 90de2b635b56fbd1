"""`trajlab safe ...`: train an unsafe expert and a constrained oracle, remove the unsafe behaviour, measure it.

Every command checks its inputs (the env is a safety task, a run holds a ppo_lagrangian checkpoint, target costs
are not negative) before it writes anything, builds its run directory under `<out>.partial` and renames it to
`<out>` only when result.json is written, so a failed or interrupted command leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.algos.base import load_agent, new_agent, save_agent
from trajlab.algos.online.ppo_lagrangian import PPOLagrangian, PPOLagrangianConfig
from trajlab.audit.probes import probe_report
from trajlab.audit.relearn import relearn
from trajlab.audit.safety_eval import evaluate_policies, write_episode_csv
from trajlab.core.config import from_dict, merge_overrides, read_preset, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.rundir import RunDirectory, agent_checkpoint
from trajlab.core.seeding import set_threads
from trajlab.core.spec import SpaceSpec
from trajlab.envs.safety import SafetyVectorEnv, check_safety_env
from trajlab.eval.latents import HazardProbe, fingerprint, fit_probe, latents
from trajlab.eval.safety_rollouts import labelled_states, top_down_frames
from trajlab.report.media import save_gif
from trajlab.report.sections.safety import write_safety_report
from trajlab.training.onpolicy import OnPolicyHistory, train_onpolicy
from trajlab.unlearning.safety import (
    ConceptConfig,
    DecrementalConfig,
    RepeditConfig,
    SafetyEnvOptions,
    SafetyUnlearnResult,
    run_concept,
    run_decremental,
    run_repedit,
)

METHOD_NAMES = ("concept", "decremental", "repedit")


@dataclass(frozen=True)
class SafePreset:
    """configs/safe/<preset>.yaml."""

    env_id: str = "SafetyPointGoal1-v0"
    num_envs: int = 8
    horizon: int = 1024
    agent: dict[str, Any] = field(default_factory=dict)
    unsafe_updates: int = 300
    oracle_updates: int = 450
    checkpoint_every: int = 50
    oracle: dict[str, Any] = field(default_factory=dict)
    concept: dict[str, Any] = field(default_factory=dict)
    decremental: dict[str, Any] = field(default_factory=dict)
    repedit: dict[str, Any] = field(default_factory=dict)
    eval_episodes: int = 20
    eval_max_steps: int | None = 1000
    eval_deterministic: bool = True
    kl_states: int = 10_000
    relearn_max_updates: int = 150
    relearn_threshold_fraction: float = 0.5
    probe_per_class: int = 10_000
    probe_steps: int = 200_000
    gif_steps: int = 1000


@dataclass(frozen=True)
class SafeTrainConfig:
    role: str = "unsafe"
    """unsafe (PPO on reward alone) or oracle (PPO-Lagrangian from scratch under the target cost)."""
    preset: str = "quick"
    """configs/safe/<preset>.yaml (quick: CPU minutes; paper: the seed settings)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Preset values to change: KEY=VALUE or SECTION.KEY=VALUE, e.g. concept.lr=1e-3 or eval_episodes=40."""
    env_id: str | None = None
    """Safety task (None: the preset's, SafetyPointGoal1-v0)."""
    updates: int | None = None
    """Policy iterations (None: the preset's unsafe_updates / oracle_updates)."""
    target_cost: float | None = None
    """Oracle's allowed cost per step (None: the preset's)."""
    seed: int = 0
    """Seed of the networks, envs and minibatches."""
    out: str = "runs/safe_unsafe"
    """Run directory to write."""
    overwrite: bool = False
    """Replace a run already in --out."""
    num_threads: int | None = 1
    """Torch intra-op threads (1: best when other jobs share the cores)."""


@dataclass(frozen=True)
class SafeUnlearnConfig:
    agent: str = "runs/safe_unsafe"
    """Run directory (or checkpoint) of the unsafe expert."""
    method: str = "concept"
    """concept, decremental or repedit."""
    preset: str = "quick"
    """configs/safe/<preset>.yaml."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Preset values to change: KEY=VALUE or SECTION.KEY=VALUE, e.g. concept.lr=1e-3 or eval_episodes=40."""
    updates: int | None = None
    """Iterations of the method (None: the preset's)."""
    forget_episode_ids: tuple[int, ...] | None = None
    """decremental: episode ids of the first collection to unlearn (None: those above the target cost rate)."""
    seed: int = 0
    """Seed of envs and minibatches."""
    out: str = "runs/safe_unlearned"
    """Run directory to write."""
    overwrite: bool = False
    """Replace a run already in --out."""
    num_threads: int | None = 1
    """Torch intra-op threads."""


@dataclass(frozen=True)
class SafeEvalConfig:
    runs: tuple[str, ...] = ()
    """Run directories (or checkpoints) of the policies to compare."""
    oracle: str | None = None
    """The oracle's run: KL to it is measured on its visited states (None: no KL column)."""
    preset: str = "quick"
    """configs/safe/<preset>.yaml (episodes, their length, GIF length)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Preset values to change: KEY=VALUE or SECTION.KEY=VALUE, e.g. concept.lr=1e-3 or eval_episodes=40."""
    episodes: int | None = None
    """Evaluation episodes per policy (None: the preset's; the preset says whether they are deterministic)."""
    seed: int = 1000
    """Seed of the evaluation envs (the same for every policy)."""
    out: str = "runs/safe_eval"
    """Run directory to write."""
    overwrite: bool = False
    """Replace a run already in --out."""
    gifs: bool = True
    """Write a top-down GIF of each policy."""


@dataclass(frozen=True)
class SafeRelearnConfig:
    run: str = "runs/safe_unlearned"
    """The model to fine-tune on reward alone."""
    expert: str | None = None
    """The unsafe expert whose cost rate sets the threshold (None: the run's own source agent)."""
    compare: tuple[str, ...] = ()
    """More runs to test the same way (the oracle, say)."""
    random_init: bool = True
    """Also test a freshly initialised agent."""
    preset: str = "quick"
    """configs/safe/<preset>.yaml."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Preset values to change: KEY=VALUE or SECTION.KEY=VALUE, e.g. concept.lr=1e-3 or eval_episodes=40."""
    max_updates: int | None = None
    """Give up after this many iterations (None: the preset's)."""
    seed: int = 0
    """Seed of envs and minibatches."""
    out: str = "runs/safe_relearn"
    """Run directory to write."""
    overwrite: bool = False
    """Replace a run already in --out."""
    num_threads: int | None = 1
    """Torch intra-op threads."""


@dataclass(frozen=True)
class SafeProbeConfig:
    run: str = "runs/safe_unlearned"
    """The model to probe."""
    expert: str | None = None
    """The unsafe expert (None: the run's own source agent)."""
    probe: str | None = None
    """A hazard probe JSON fitted on the expert (None: fit one now)."""
    compare: tuple[str, ...] = ()
    """More runs to probe on the same states."""
    preset: str = "quick"
    """configs/safe/<preset>.yaml."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Preset values to change: KEY=VALUE or SECTION.KEY=VALUE, e.g. concept.lr=1e-3 or eval_episodes=40."""
    seed: int = 0
    """Seed of the state collection and the probes' splits."""
    out: str = "runs/safe_probe"
    """Run directory to write."""
    overwrite: bool = False
    """Replace a run already in --out."""


# --- shared pieces ---------------------------------------------------------------------------------------
def load_safe_preset(preset: str, overrides: dict[str, Any] | None = None) -> SafePreset:
    """configs/safe/<preset>.yaml (or a preset file) with `overrides` merged in at any depth."""
    values = merge_overrides(read_preset("safe", preset), overrides or {}, keep_none=True)
    return from_dict(SafePreset, values, where=f"safe/{preset}")


def _preset_entries(config: SafeTrainConfig | SafeUnlearnConfig) -> dict[str, Any]:
    """The result's record of the preset, with the --set values that changed it."""
    return {"preset": config.preset, **({"overrides": config.overrides} if config.overrides else {})}


def load_safety_agent(run: str | Path) -> PPOLagrangian:
    """The ppo_lagrangian agent of a run; another algorithm's checkpoint is a one-line error."""
    agent = load_agent(agent_checkpoint(run))
    if not isinstance(agent, PPOLagrangian):
        raise TrajlabError(f"{run}: holds a {agent.name} checkpoint, not ppo_lagrangian (train one with "
                           "`trajlab safe train-unsafe`)")
    return agent


def run_env(run: str | Path) -> str:
    return str(RunDirectory.open(Path(run) if Path(run).is_dir() else Path(run).parents[1]).config().get(
        "env_id", "SafetyPointGoal1-v0"))


def source_expert(run: str | Path) -> str:
    """The unsafe expert an unlearning run started from."""
    source = RunDirectory.open(run).config().get("agent")
    if source is None:
        raise TrajlabError(f"{run}: not an unlearning run; name the expert with --expert")
    return str(source)


@contextlib.contextmanager
def staged_run(out: str | Path, config: Any, *, command: str, overwrite: bool) -> Iterator[RunDirectory]:
    """A run directory built at `<out>.partial` and moved to `out` when the block succeeds; removed if it fails."""
    target = Path(out)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise TrajlabError(f"{target}: a run is already there (use --overwrite or another --out)")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    run = RunDirectory.create(staging, config, command=command)
    try:
        yield run
        run.close()
    except BaseException:
        run.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _history_result(history: OnPolicyHistory | None) -> dict[str, Any]:
    if history is None:
        return {"curve": []}
    keys = ("iteration", "env_steps", "rollout_cost_rate", "rollout_reward_per_step", "episode_return",
            "episode_cost", "lagrange")
    return {"curve": [{key: row.get(key) for key in keys} for row in history.rows],
            "train_wall_time_s": history.wall_time_s}


def _finish(run: RunDirectory, result: dict[str, Any], title: str) -> dict[str, Any]:
    final_out = str(run.path).removesuffix(".partial")
    result = {**result, "run_dir": final_out}
    result["plots"] = write_safety_report(run, result, title)
    run.write_result(result)
    return result


# --- train-unsafe / train-oracle ---------------------------------------------------------------------------
def agent_config(preset: SafePreset, role: str, target_cost: float | None) -> PPOLagrangianConfig:
    values = dict(preset.agent)
    if role == "oracle":
        values.update(preset.oracle, use_cost=True)
        if target_cost is not None:
            values["target_cost"] = target_cost
    else:
        values["use_cost"] = False
    return from_dict(PPOLagrangianConfig, values, where=f"safe/{role} agent")


def train(config: SafeTrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train the unsafe expert or the oracle; checkpoints every `checkpoint_every` iterations and at the end."""
    if config.role not in ("unsafe", "oracle"):
        raise TrajlabError(f"role must be unsafe or oracle, got {config.role!r}")
    if config.target_cost is not None and config.target_cost < 0:
        raise TrajlabError(f"target cost must be 0 or positive, got {config.target_cost}")
    preset = load_safe_preset(config.preset, config.overrides)
    env_id = config.env_id or preset.env_id
    check_safety_env(env_id)
    updates = config.updates or (preset.unsafe_updates if config.role == "unsafe" else preset.oracle_updates)
    agent_cfg = agent_config(preset, config.role, config.target_cost)
    set_threads(config.num_threads)
    stored = {**to_dict(config), "env_id": env_id, "updates": updates}
    with staged_run(config.out, stored, command=f"safe train-{config.role}", overwrite=config.overwrite) as run:
        envs = SafetyVectorEnv(env_id, preset.num_envs, seed=config.seed)
        agent = new_agent(PPOLagrangian, SpaceSpec.from_env(envs), agent_cfg, seed=config.seed)

        def checkpoint(iteration: int, trained: PPOLagrangian) -> None:
            if preset.checkpoint_every and iteration % preset.checkpoint_every == 0:
                save_agent(run.checkpoint_path(f"step_{iteration}"), trained, {"env_id": env_id})

        history = train_onpolicy(agent, envs, iterations=updates, horizon=preset.horizon, seed=config.seed,
                                 log=run.log_metrics, on_iteration=checkpoint, progress=progress)
        envs.close()
        save_agent(run.checkpoint_path("final"), agent, {"env_id": env_id, "role": config.role})
        result = {"role": config.role, "env_id": env_id, **_preset_entries(config), "seed": config.seed,
                  "updates": updates, "env_steps": updates * preset.horizon * preset.num_envs,
                  "final_lagrange": agent.lagrange, **_history_result(history)}
        result = _finish(run, result, f"Safety: {config.role} policy on {env_id}")
    return result


# --- unlearn -----------------------------------------------------------------------------------------------
def method_config(preset: SafePreset, config: SafeUnlearnConfig, env_id: str) -> Any:
    """The method's config from the preset's section, with the command's updates and seed."""
    classes = {"concept": ConceptConfig, "decremental": DecrementalConfig, "repedit": RepeditConfig}
    if config.method not in classes:
        raise TrajlabError(f"unknown safety unlearning method {config.method!r}; known: {', '.join(METHOD_NAMES)}")
    values = dict(getattr(preset, config.method))
    if config.updates is not None:
        values["finetune_updates" if config.method == "repedit" else "updates"] = config.updates
    if float(values.get("target_cost", 0.0)) < 0:
        raise TrajlabError(f"target cost must be 0 or positive, got {values['target_cost']}")
    values["envs"] = to_dict(SafetyEnvOptions(env_id, preset.num_envs, preset.horizon, config.seed))
    return from_dict(classes[config.method], values, where=f"safe/{config.preset} {config.method}")


def _run_method(expert: PPOLagrangian, method: str, settings: Any, config: SafeUnlearnConfig,
                progress: bool) -> SafetyUnlearnResult:
    if method == "concept":
        return run_concept(expert, settings, progress=progress)
    if method == "decremental":
        return run_decremental(expert, settings, config.forget_episode_ids)
    return run_repedit(expert, settings, progress=progress)


def unlearn(config: SafeUnlearnConfig, *, progress: bool = True) -> dict[str, Any]:
    """Remove the unsafe behaviour from the expert with one method; the result agent is checkpoints/final."""
    expert = load_safety_agent(config.agent)
    env_id = run_env(config.agent)
    check_safety_env(env_id)
    preset = load_safe_preset(config.preset, config.overrides)
    settings = method_config(preset, config, env_id)
    set_threads(config.num_threads)
    stored = {**to_dict(config), "env_id": env_id}
    with staged_run(config.out, stored, command="safe unlearn", overwrite=config.overwrite) as run:
        started = time.perf_counter()
        outcome = _run_method(expert, config.method, settings, config, progress)
        if outcome.history is not None:
            for row in outcome.history.rows:
                run.log_metrics(int(row["iteration"]), {k: v for k, v in row.items() if k != "iteration"})
        save_agent(run.checkpoint_path("final"), outcome.agent, {"env_id": env_id, "method": config.method})
        if outcome.probe is not None:
            outcome.probe.save(run.path / "hazard_probe.json")
        if outcome.dataset is not None:
            _certify(run, outcome, config, settings, time.perf_counter() - started)
        result = {"method": config.method, "env_id": env_id, "agent": config.agent, **_preset_entries(config),
                  "seed": config.seed, **outcome.details, "wall_time_s": time.perf_counter() - started,
                  **_history_result(outcome.history)}
        result = _finish(run, result, f"Safety unlearning ({config.method}) on {env_id}")
    return result


def _certify(run: RunDirectory, outcome: SafetyUnlearnResult, config: SafeUnlearnConfig, settings: Any,
             wall_time_s: float) -> None:
    """decremental: the collection it named episodes in (collection.hdf5) and a deletion certificate of the
    unsafe episodes of it (ids and content hashes), as `trajlab forget` writes for datasets."""
    from trajlab.core.io import sha256_file, write_json_atomic
    from trajlab.unlearning.certificate import build_certificate

    assert outcome.dataset is not None
    outcome.dataset.save(run.path / "collection.hdf5")
    checkpoint = agent_checkpoint(config.agent)
    certificate = build_certificate(
        dataset=outcome.dataset, forget_ids=outcome.details["first_collection_unsafe_ids"], method="decremental",
        method_config=to_dict(settings), original_checkpoint=str(checkpoint),
        original_checkpoint_sha256=sha256_file(checkpoint), algorithm="ppo_lagrangian",
        wall_time_seconds=wall_time_s, unlearning_updates=outcome.agent.num_updates,
        dataset_path="collection.hdf5")
    write_json_atomic(run.path / "certificate.json", certificate)


# --- eval --------------------------------------------------------------------------------------------------
def _names(runs: tuple[str, ...]) -> list[str]:
    names = [Path(run).name or str(run) for run in runs]
    return [name if names.count(name) == 1 else f"{name}_{index}" for index, name in enumerate(names)]


def evaluate(config: SafeEvalConfig) -> dict[str, Any]:
    """The policy suite on every run: return, cost, cost rate, goals (and KL to the oracle); CSV, JSON, GIFs."""
    if not config.runs:
        raise TrajlabError("give at least one run to evaluate")
    agents = {name: load_safety_agent(run) for name, run in zip(_names(config.runs), config.runs, strict=True)}
    env_id = run_env(config.runs[0])
    check_safety_env(env_id)
    oracle = None if config.oracle is None else load_safety_agent(config.oracle)
    preset = load_safe_preset(config.preset, config.overrides)
    episodes = config.episodes or preset.eval_episodes
    with staged_run(config.out, to_dict(config), command="safe eval", overwrite=config.overwrite) as run:
        states = None
        if oracle is not None:
            states, _ = labelled_states(oracle, env_id, preset.kl_states, seed=config.seed, num_envs=preset.num_envs)
        summaries, records = evaluate_policies(agents, env_id, episodes=episodes, seed=config.seed,
                                               num_envs=preset.num_envs, oracle=oracle, states=states,
                                               max_steps=preset.eval_max_steps,
                                               deterministic=preset.eval_deterministic)
        write_episode_csv(run.path / "episodes.csv", records)
        gifs = {}
        if config.gifs:
            for name, agent in agents.items():
                frames = top_down_frames(agent, env_id, preset.gif_steps, seed=config.seed,
                                         deterministic=preset.eval_deterministic)
                save_gif(frames, run.plots / f"{name}.gif", fps=20)
                gifs[name] = f"plots/{name}.gif"
        result = {"env_id": env_id, "episodes": episodes, "runs": list(config.runs), "policies": summaries,
                  "gifs": gifs, "episode_csv": "episodes.csv"}
        result = _finish(run, result, f"Safety policy suite on {env_id}")
    return result


# --- relearn -----------------------------------------------------------------------------------------------
def relearn_test(config: SafeRelearnConfig) -> dict[str, Any]:
    """Updates of reward-only fine-tuning until the cost rate exceeds a fraction of the expert's, per model."""
    expert_run = config.expert or source_expert(config.run)
    expert = load_safety_agent(expert_run)
    env_id = run_env(expert_run)
    models = {name: load_safety_agent(run) for name, run in
              zip(_names((config.run, *config.compare)), (config.run, *config.compare), strict=True)}
    preset = load_safe_preset(config.preset, config.overrides)
    max_updates = config.max_updates or preset.relearn_max_updates
    set_threads(config.num_threads)
    if config.random_init:
        models["random_init"] = new_agent(PPOLagrangian, expert.spec, expert.config, seed=config.seed + 1)
    with staged_run(config.out, to_dict(config), command="safe relearn", overwrite=config.overwrite) as run:
        reference = evaluate_policies({"expert": expert}, env_id, episodes=preset.eval_episodes, seed=config.seed,
                                      num_envs=preset.num_envs, max_steps=preset.eval_max_steps,
                                      deterministic=preset.eval_deterministic)[0]["expert"]
        threshold = preset.relearn_threshold_fraction * reference["cost_rate"]
        outcomes = {name: relearn(model, env_id, threshold=threshold, max_updates=max_updates,
                                  num_envs=preset.num_envs, horizon=preset.horizon, seed=config.seed)
                    for name, model in models.items()}
        result = {"env_id": env_id, "expert": expert_run, "expert_cost_rate": reference["cost_rate"],
                  "threshold": threshold, "max_updates": max_updates,
                  "relearn": {name: {"updates": o.updates, "relearned": o.relearned,
                                     "cost_rates": list(o.cost_rates)} for name, o in outcomes.items()}}
        result = _finish(run, result, f"Safety relearn test on {env_id}")
    return result


# --- probe -------------------------------------------------------------------------------------------------
def probe(config: SafeProbeConfig) -> dict[str, Any]:
    """Probe accuracy, hazard-direction shift and CKA of each model against the unsafe expert."""
    expert_run = config.expert or source_expert(config.run)
    expert = load_safety_agent(expert_run)
    env_id = run_env(expert_run)
    models = {name: load_safety_agent(run) for name, run in
              zip(_names((config.run, *config.compare)), (config.run, *config.compare), strict=True)}
    preset = load_safe_preset(config.preset, config.overrides)
    given = None if config.probe is None else HazardProbe.load(config.probe)
    if given is not None:
        given.check_model(expert)
    with staged_run(config.out, to_dict(config), command="safe probe", overwrite=config.overwrite) as run:
        states, hazard = labelled_states(expert, env_id, preset.probe_steps, seed=config.seed,
                                         num_envs=preset.num_envs)
        expert_probe = given or fit_probe(latents(expert, states), hazard, per_class=preset.probe_per_class,
                                          tau_quantile=0.8, seed=config.seed, model_fingerprint=fingerprint(expert))
        expert_probe.save(run.path / "expert_probe.json")
        report = probe_report(expert, expert_probe, {"expert": expert, **models}, states, hazard,
                              per_class=preset.probe_per_class, seed=config.seed)
        np.savez(run.path / "states.npz", observations=states, hazard=hazard)
        result = {"env_id": env_id, "expert": expert_run, "states": int(len(hazard)),
                  "hazard_states": int(hazard.sum()), "expert_probe_accuracy": expert_probe.accuracy,
                  "models": report}
        result = _finish(run, result, f"Hazard probes on {env_id}")
    return result


# --- the quickstart's step -----------------------------------------------------------------------------------
def quickstart_step(out_dir: Path, *, seed: int) -> dict[str, Any]:
    """A short end-to-end tour: a briefly trained unsafe expert, concept unlearning, the policy suite, GIFs."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    train(SafeTrainConfig(role="unsafe", updates=40, seed=seed, out=str(out_dir / "unsafe"), overwrite=True),
          progress=False)
    unlearn(SafeUnlearnConfig(agent=str(out_dir / "unsafe"), method="concept", updates=15, seed=seed,
                              out=str(out_dir / "concept"), overwrite=True), progress=False)
    found = evaluate(SafeEvalConfig(runs=(str(out_dir / "unsafe"), str(out_dir / "concept")), episodes=4,
                                    seed=seed + 1000, out=str(out_dir / "eval"), overwrite=True))
    unsafe, concept = found["policies"]["unsafe"], found["policies"]["concept"]
    sentences = [
        f"A PPO policy trained on reward alone for 40 iterations ({40 * 1000:,} env steps) of SafetyPointGoal1-v0 "
        f"earns {unsafe['return']:.1f} per 1,000-step episode at a cost of {unsafe['cost']:.1f} "
        f"(cost rate {unsafe['cost_rate']:.3f} per step).",
        f"Concept unlearning (15 iterations of PID-Lagrangian fine-tuning on the hazard cost, target 0.03 per "
        f"step) gives return {concept['return']:.1f} and cost {concept['cost']:.1f} "
        f"(cost rate {concept['cost_rate']:.3f}).",
    ]
    where = out_dir / "eval"
    return {"title": "Removing an unsafe behaviour (trajlab safe)", "sentences": sentences,
            "plots": [str(where / path) for path in found["plots"]],
            "gifs": {name: str(where / path) for name, path in found["gifs"].items()},
            "report": str(where / "report.html"),
            "unsafe": unsafe, "concept": concept, "wall_time_s": time.perf_counter() - started}
