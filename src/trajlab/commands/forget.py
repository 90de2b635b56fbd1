"""`trajlab forget`: remove trajectories from a trained agent into a NEW run directory with a deletion certificate.

    trajlab forget --agent runs/td3_bc --dataset hopper.hdf5 --method trajdeleter --fraction 0.01 --out runs/forget

Everything the request needs is checked before anything is written (unknown ids, an empty forget set, a forget
set that is the whole dataset, a dataset that does not match the agent, an output that is the original run).
The original run is only read. The new run holds checkpoints/final.safetensors (the unlearned agent),
certificate.json, result.json, config.yaml and report.html; `--audit` adds TrajAuditor's verdicts and
`--audit --test lira` the likelihood-ratio test's (with its error rates; trajlab.commands.membership),
`--evaluate` the environment returns of the original, unlearned (and, with `--retrain`, retrained) agents and
the method's wall time relative to retraining.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.audit.lira import LiraAuditor, LiraConfig, LiraResult
from trajlab.audit.trajauditor import (
    AuditConfig,
    AuditResult,
    TrajAuditor,
    check_audit_config,
    q_values,
    with_shadow_steps,
)
from trajlab.commands.membership import check_test, lira_audit, prepare_lira
from trajlab.commands.progress import counted_updates_bar, in_process_shadow_updates
from trajlab.core.checkpoint import read_checkpoint_metadata
from trajlab.core.config import load_nested_preset, to_dict
from trajlab.core.devices import check_device
from trajlab.core.errors import TrajlabError
from trajlab.core.io import sha256_file, write_json_atomic
from trajlab.core.protocols import ValueEstimator, require, updates_of
from trajlab.core.rundir import RunDirectory, agent_checkpoint
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.data.dataset import TransitionDataset
from trajlab.data.ids import parse_episode_ids, read_episodes_file
from trajlab.training.steps import check_steps
from trajlab.unlearning.base import (
    METHODS,
    check_trajectory_method,
    method_updates,
    select_fraction,
    validate_request,
)
from trajlab.unlearning.certificate import build_certificate
from trajlab.unlearning.finetune import FinetuneConfig
from trajlab.unlearning.random_reward import RandomRewardConfig
from trajlab.unlearning.retrain import RetrainConfig
from trajlab.unlearning.trajdeleter import TrajDeleterConfig
from trajlab.unlearning.trajdeleter import check_config as check_trajdeleter

RESULT_KEYS = ("method", "algo", "forgotten_episode_ids", "num_forgotten_episodes", "num_forgotten_transitions",
               "wall_time_s", "original_checkpoint", "checkpoint", "certificate", "run_dir", "audit_forgotten_rate",
               "audit_control_forgotten_rate", "audit_specificity", "audit_test", "audit_verdict", "audit_error_rates",
               "evaluation", "retrain_wall_time_s",
               "retrain_time_source", "relative_time", "values", "plots")
"""Keys of result.json: always present (None where a value does not apply)."""


@dataclass(frozen=True)
class ForgetConfig:
    """One forget request and how to carry it out (presets: configs/forget/<preset>.yaml)."""

    agent: str
    """The trained agent: a run directory (checkpoints/final.safetensors) or a checkpoint file."""
    dataset: str
    """The dataset the agent was trained on (trajlab HDF5)."""
    out: str
    """New run directory to write (never the original run)."""
    method: str = "trajdeleter"
    """trajdeleter, finetune, random-reward or retrain."""
    episodes: tuple[int, ...] | None = None
    """Episode ids to forget, e.g. 3,17,42."""
    episodes_file: str | None = None
    """A file of episode ids to forget (a JSON list, or ids separated by commas/whitespace; # comments)."""
    fraction: float | None = None
    """Forget this fraction of the dataset's episodes, chosen at random with `seed`."""
    episodes_from: str | None = None
    """Forget the episodes of the most harmful groups of this offline influence estimate (or the influence run
    holding one in RUN/influence; `trajlab influence estimate`); with --worst."""
    worst: int | None = None
    """With --episodes-from: how many of the most harmful episode groups to forget."""
    by: str = "return"
    """With --episodes-from: the influence score that ranks the groups (return, td, policy)."""
    seed: int = 0
    """Seed of the random forget set and of the method's sampling."""
    preset: str = "quick"
    """Preset of the method and auditor settings: configs/forget/<preset>.yaml (quick: CPU minutes; paper: the
    paper's steps)."""
    trajdeleter: TrajDeleterConfig = TrajDeleterConfig()
    """TrajDeleter's settings."""
    finetune: FinetuneConfig = FinetuneConfig()
    """Fine-tuning baseline's settings."""
    random_reward: RandomRewardConfig = RandomRewardConfig()
    """Random-reward baseline's settings."""
    retrain: RetrainConfig = RetrainConfig()
    """Retraining's settings (also used for the --retrain comparison)."""
    audit: bool = False
    """Audit the forgotten trajectories with TrajAuditor and put the verdict in the certificate."""
    auditor: AuditConfig = AuditConfig()
    """TrajAuditor's settings."""
    test: str = "trajauditor"
    """Membership test of --audit: trajauditor (the paper's: fine-tuned shadows, Grubbs test) or lira (likelihood
    ratio: shadows trained from scratch, with error rates)."""
    lira: LiraConfig = LiraConfig()
    """The likelihood-ratio test's settings (--audit --test lira)."""
    canaries: int = 0
    """With --audit --test lira: plant this many canary trajectories in a copy of the dataset (written to the run
    directory, ids in result.json) and train one agent from scratch on it; the test must find them there and not
    in the unlearned agent (0: none; canaries the dataset's metadata lists are always checked)."""
    evaluate: bool = False
    """Measure environment returns of the original and unlearned agents."""
    compare_retrain: bool = False
    """With `evaluate`: also retrain from scratch, for its return and its wall time."""
    eval_episodes: int = 10
    """Episodes per environment evaluation."""
    device: str = "cpu"
    """Torch device of the agents: cpu or cuda."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace a run (finished or interrupted) already in `out`."""
    progress: bool = True
    """Show progress bars on stderr, on a terminal: the method's updates, then the in-process shadows', then
    retraining's (one bar each, so the method's bar holds only what its wall time measures)."""


def load_forget_config(preset: str, **overrides: Any) -> ForgetConfig:
    """ForgetConfig from configs/forget/<preset>.yaml with command-line values on top (None values ignored;
    a dict value such as auditor={"num_shadows": 3} changes only the keys it names)."""
    return load_nested_preset(ForgetConfig, "forget", preset, overrides)


def method_config(config: ForgetConfig, method: str | None = None) -> Any:
    """The chosen method's config, with the request's seed where the method takes one."""
    name = method or config.method
    check_trajectory_method(name)
    chosen = {"trajdeleter": config.trajdeleter, "finetune": config.finetune,
              "random-reward": config.random_reward, "retrain": config.retrain}[name]
    return replace(chosen, seed=config.seed) if name != "retrain" else chosen


# --- request parsing ----------------------------------------------------------------------------------------


def resolve_forget_set(config: ForgetConfig, dataset: TransitionDataset) -> list[int]:
    """The requested ids from exactly one of --episodes, --episodes-file, --fraction and --episodes-from."""
    given = [name for name, value in (("--episodes", config.episodes), ("--episodes-file", config.episodes_file),
                                      ("--fraction", config.fraction), ("--episodes-from", config.episodes_from))
             if value is not None]
    if len(given) != 1:
        raise TrajlabError("give exactly one of --episodes, --episodes-file, --fraction and --episodes-from"
                           + (f" (got {', '.join(given)})" if given else ""))
    if (config.episodes_from is None) != (config.worst is None):
        raise TrajlabError("--episodes-from and --worst go together")
    if config.episodes_from is not None:
        return influence_selection(config)[0]
    if config.fraction is not None:
        return [int(i) for i in select_fraction(dataset, config.fraction, config.seed)]
    if config.episodes_file is not None:
        return read_episodes_file(config.episodes_file)
    return parse_episode_ids(list(config.episodes))


def influence_selection(config: ForgetConfig) -> tuple[list[int], dict[str, Any]]:
    """(episode ids, record) of --episodes-from --worst --by: the most harmful groups' episodes."""
    from trajlab.commands.influence import worst_episodes

    assert config.episodes_from is not None and config.worst is not None
    return worst_episodes(config.episodes_from, config.worst, config.by, config.dataset)


@dataclass
class _Request:
    """Everything a validated request holds (loaded before anything is written)."""

    checkpoint: Path
    metadata: dict[str, Any]
    agent: Any
    dataset: TransitionDataset
    forget_ids: np.ndarray
    env_id: str | None
    extras: dict[str, Any] = field(default_factory=dict)


def prepare_request(config: ForgetConfig) -> _Request:
    """Load and check the agent, the dataset, the forget set and the output; raises TrajlabError, writes nothing."""
    from trajlab.algos.base import start_from_checkpoint

    check_trajectory_method(config.method)
    if config.eval_episodes < 1:
        raise TrajlabError(f"eval_episodes must be at least 1, got {config.eval_episodes}")
    checkpoint = agent_checkpoint(config.agent)
    _check_output(config, checkpoint)
    metadata = read_checkpoint_metadata(checkpoint)
    agent = start_from_checkpoint(checkpoint, device=config.device)
    dataset = TransitionDataset.load(config.dataset)
    requested = resolve_forget_set(config, dataset)
    env_id = metadata.get("env_id") or (metadata.get("dataset_metadata") or {}).get("env_id")
    forget_ids = validate_request(agent, dataset, requested, expected_env=env_id)
    env_id = env_id or dataset.metadata.get("env_id")
    _preflight(config, agent, env_id)
    return _Request(checkpoint, metadata, agent, dataset, forget_ids, env_id)


def _preflight(config: ForgetConfig, agent: Any, env_id: str | None) -> None:
    """What would otherwise fail after the new run was started: method settings, audit and evaluation needs."""
    chosen = method_config(config)
    if config.method == "trajdeleter":
        check_trajdeleter(agent, chosen)
    elif config.method in ("finetune", "random-reward"):
        check_steps(steps=chosen.steps)
    check_test(config.test, config.lira, config.canaries)
    if (config.canaries or config.test != "trajauditor") and not config.audit:
        raise TrajlabError("--test and --canaries choose how --audit audits; add --audit")
    if config.audit and config.test == "trajauditor":
        check_audit_config(config.auditor)
        require(agent, ValueEstimator, needed_by="--audit (TrajAuditor)")
    if config.evaluate:
        from trajlab.envs import env_info

        if env_id is None:
            raise TrajlabError("--evaluate: neither the agent's run nor the dataset names an environment")
        env_info(env_id)


def _check_output(config: ForgetConfig, checkpoint: Path) -> None:
    """The new run may not be, or lie inside, the original run, nor hold the inputs (--overwrite would delete them)."""
    out = Path(config.out).resolve()
    source = checkpoint.resolve()
    original_run = source.parent.parent if source.parent.name == "checkpoints" else None
    if original_run is not None and (out == original_run or original_run in out.parents):
        raise TrajlabError(f"--out {config.out} is inside the original agent's run; forget writes a separate run")
    for needed in (source, Path(config.dataset).resolve()):
        if out == needed or out in needed.parents:
            raise TrajlabError(f"--out {config.out} holds {needed.name}, an input of this request; "
                               "choose another --out")
    if out.is_file():
        raise TrajlabError(f"--out {config.out}: is a file; give a folder for the new run")
    if out.is_dir() and any(out.iterdir()) and not config.overwrite:
        raise TrajlabError(f"--out {config.out}: already holds files (use --overwrite or another --out)")


# --- running ------------------------------------------------------------------------------------------------
def run(config: ForgetConfig) -> dict[str, Any]:
    """Carry out the request, write the new run directory, return result.json's content."""
    check_device(config.device)
    set_threads(config.threads)
    request = prepare_request(config)
    lira = prepare_lira(request.agent, request.dataset, request.forget_ids, config.lira, config.canaries) \
        if config.audit and config.test == "lira" else None
    run_dir = RunDirectory.create(config.out, config, command="forget", overwrite=config.overwrite)
    with counted_updates_bar(f"forget: {config.method}", _method_updates(request, config), enabled=config.progress):
        unlearned, wall_time = _unlearn(request, config)
    checkpoint = _save_unlearned(run_dir, unlearned, request, config)
    audit = _audit(request, unlearned, config, lira, run_dir) if config.audit else None
    evaluation = _evaluate(request, unlearned, config, wall_time) if config.evaluate else None
    values = value_summary(request.agent, unlearned, request.dataset, request.forget_ids)
    certificate = build_certificate(
        dataset=request.dataset, forget_ids=request.forget_ids, method=config.method,
        method_config=to_dict(method_config(config)), original_checkpoint=str(request.checkpoint.resolve()),
        original_checkpoint_sha256=sha256_file(request.checkpoint), algorithm=str(request.metadata.get("algo")),
        wall_time_seconds=wall_time, unlearning_updates=_method_updates(request, config),
        dataset_path=str(Path(config.dataset).resolve()),
        audit=None if audit is None else _audit_verdict(audit))
    if config.episodes_from is not None:  # which influence estimate and score chose the forget set
        certificate["selected_by"] = influence_selection(config)[1]
    write_json_atomic(run_dir.path / "certificate.json", certificate)
    result = _result(config, request, run_dir, checkpoint, wall_time, audit, evaluation, values)
    from trajlab.report.sections.forgetting import write_forget_report

    result["plots"] = write_forget_report(run_dir, result, certificate, audit)
    run_dir.write_result(result)
    return result


def _unlearn(request: _Request, config: ForgetConfig) -> tuple[Any, float]:
    method = METHODS.get(config.method)
    started = time.perf_counter()
    unlearned = method.function(request.agent, request.dataset, request.forget_ids, method_config(config))
    return unlearned, time.perf_counter() - started


def _save_unlearned(run_dir: RunDirectory, unlearned: Any, request: _Request, config: ForgetConfig) -> Path:
    from trajlab.algos.base import save_agent

    metadata = {"unlearning_method": config.method, "forgotten_episode_ids": request.forget_ids.tolist(),
                "original_checkpoint": str(request.checkpoint.resolve()), "env_id": request.env_id,
                "dataset": str(Path(config.dataset).resolve()),
                "dataset_metadata": request.metadata.get("dataset_metadata") or dict(request.dataset.metadata)}
    return save_agent(run_dir.checkpoint_path("final"), unlearned, metadata)


def _method_updates(request: _Request, config: ForgetConfig) -> int | None:
    return method_updates(config.method, to_dict(method_config(config)), updates_of(request.agent))


def _audit(request: _Request, unlearned: Any, config: ForgetConfig, lira: LiraAuditor | None,
           run_dir: RunDirectory) -> AuditResult | LiraResult:
    if lira is not None:
        return lira_audit(lira, unlearned, request.dataset, request.forget_ids, excluded=request.forget_ids,
                          run_path=run_dir.path, progress=config.progress)
    auditor_config = with_shadow_steps(config.auditor, _method_updates(request, config))
    auditor = TrajAuditor(request.agent, request.dataset.without(request.forget_ids), auditor_config)
    with counted_updates_bar("audit: shadow agents", in_process_shadow_updates(auditor_config),
                             enabled=config.progress):
        return auditor.audit(unlearned, request.dataset, request.forget_ids)


def _audit_verdict(audit: AuditResult | LiraResult) -> dict[str, Any]:
    """The certificate's audit entry: which test, its verdict and (lira) its error rates."""
    if isinstance(audit, LiraResult):
        return audit.to_dict()
    summary = {"test": "trajauditor", "error_rates": None, **audit.to_dict()}
    summary["verdict"] = "forgotten" if audit.forgotten_rate == 1.0 else (
        "partly forgotten" if audit.forgotten_rate > 0 else "not forgotten")
    return summary


def _evaluate(request: _Request, unlearned: Any, config: ForgetConfig, wall_time: float) -> dict[str, Any]:
    """Environment returns of original / unlearned / retrained agents and the wall-time ratio to retraining."""
    from trajlab.eval import evaluate

    assert request.env_id is not None  # checked by _preflight
    seed = derive_seed(config.seed, "forget-eval") % 2**31
    metadata = request.metadata.get("dataset_metadata") or dict(request.dataset.metadata)

    def returns(agent: Any) -> dict[str, Any]:
        return evaluate(agent, request.env_id, episodes=config.eval_episodes, seed=seed, metadata=metadata).to_dict()

    evaluation: dict[str, Any] = {"env_id": request.env_id, "original": returns(request.agent),
                                  "unlearned": returns(unlearned), "retrained": None}
    retrain_time, source = None, None
    if config.method == "retrain":
        evaluation["retrained"], retrain_time, source = evaluation["unlearned"], wall_time, "this run"
    elif config.compare_retrain:
        updates = method_updates("retrain", to_dict(config.retrain), updates_of(request.agent))
        with counted_updates_bar("evaluate: retraining", updates, enabled=config.progress):
            started = time.perf_counter()
            retrained = METHODS.get("retrain").function(request.agent, request.dataset, request.forget_ids,
                                                        config.retrain)
            retrain_time, source = time.perf_counter() - started, "measured"
        evaluation["retrained"] = returns(retrained)
    else:
        retrain_time, source = _original_training_time(request.checkpoint)
    evaluation["retrain_wall_time_s"] = retrain_time
    evaluation["retrain_time_source"] = source
    evaluation["relative_time"] = None if not retrain_time else wall_time / retrain_time
    original_return = evaluation["original"]["mean_return"]
    evaluation["return_ratio"] = (evaluation["unlearned"]["mean_return"] / original_return
                                  if original_return else None)
    return evaluation


def _original_training_time(checkpoint: Path) -> tuple[float | None, str | None]:
    """The original run's training wall time (retraining runs the same number of updates), if recorded."""
    result_file = checkpoint.parent.parent / "result.json"
    if checkpoint.parent.name != "checkpoints" or not result_file.is_file():
        return None, None
    try:
        wall = json.loads(result_file.read_text()).get("wall_time_s")
    except (OSError, json.JSONDecodeError):
        return None, None
    return (float(wall), "original training run") if wall else (None, None)


def value_summary(original: Any, unlearned: Any, dataset: TransitionDataset, forget_ids: np.ndarray) -> dict | None:
    """Mean Q(s, pi(s)) on the forget set's and the remaining states, before and after (None without q_value)."""
    if not (isinstance(original, ValueEstimator) and isinstance(unlearned, ValueEstimator)):
        return None
    forget_rows = np.isin(dataset.episode_ids, forget_ids)
    rows = {"forget": np.flatnonzero(forget_rows), "remaining": np.flatnonzero(~forget_rows)}
    rng = np.random.default_rng(0)
    summary = {}
    for part, index in rows.items():
        chosen = index if len(index) <= 20_000 else np.sort(rng.choice(index, 20_000, replace=False))
        observations = dataset.observations[chosen]
        for name, agent in (("original", original), ("unlearned", unlearned)):
            summary[f"{part}_{name}"] = float(q_values(agent, observations, agent.act(observations)).mean())
    return summary


def _result(config: ForgetConfig, request: _Request, run_dir: RunDirectory, checkpoint: Path, wall_time: float,
            audit: AuditResult | LiraResult | None, evaluation: dict | None, values: dict | None
            ) -> dict[str, Any]:
    return {
        "method": config.method, "algo": request.metadata.get("algo"),
        "forgotten_episode_ids": request.forget_ids.tolist(),
        "num_forgotten_episodes": int(len(request.forget_ids)),
        "num_forgotten_transitions": int(np.isin(request.dataset.episode_ids, request.forget_ids).sum()),
        "wall_time_s": wall_time, "original_checkpoint": str(request.checkpoint.resolve()),
        "checkpoint": str(checkpoint), "certificate": str(run_dir.path / "certificate.json"),
        "run_dir": str(run_dir.path),
        **_audit_keys(audit),
        "evaluation": evaluation,
        "retrain_wall_time_s": None if evaluation is None else evaluation["retrain_wall_time_s"],
        "retrain_time_source": None if evaluation is None else evaluation["retrain_time_source"],
        "relative_time": None if evaluation is None else evaluation["relative_time"],
        "values": values, "plots": [],
    }


def _audit_keys(audit: AuditResult | LiraResult | None) -> dict[str, Any]:
    """result.json's audit_* keys (None without --audit; a lira audit's 'forgotten' share is its non-members')."""
    if audit is None:
        return dict.fromkeys(("audit_forgotten_rate", "audit_control_forgotten_rate", "audit_specificity",
                              "audit_test", "audit_verdict", "audit_error_rates"))
    if isinstance(audit, LiraResult):
        summary = audit.to_dict()
        control = summary["control_member_rate"]
        return {"audit_forgotten_rate": 1.0 - audit.member_rate,
                "audit_control_forgotten_rate": None if control is None else 1.0 - control,
                "audit_specificity": None, "audit_test": "lira", "audit_verdict": summary["verdict"],
                "audit_error_rates": {k: v for k, v in summary["error_rates"].items() if k != "roc"}}
    return {"audit_forgotten_rate": audit.forgotten_rate, "audit_control_forgotten_rate": audit.control_forgotten_rate,
            "audit_specificity": audit.specificity()["specificity"], "audit_test": "trajauditor",
            "audit_verdict": _audit_verdict(audit)["verdict"], "audit_error_rates": None}


# --- the quickstart's step ----------------------------------------------------------------------------------
def quickstart_step(agent_run: str | Path, dataset_path: str | Path, out_dir: str | Path, seed: int = 0,
                    *, preset: str = "quick", overwrite: bool = False, **overrides: Any) -> dict[str, Any]:
    """Forget 1% of the trajectories (at least one) with TrajDeleter and audit them; returns result.json's
    content, whose "plots" lists the PNG files for the quickstart's report and "run_dir" the new run.

    `overrides` change preset values, e.g. trajdeleter={"forget_steps": 400} or auditor={"num_shadows": 3}.
    """
    config = load_forget_config(preset, **{**overrides, **dict(
        agent=str(agent_run), dataset=str(dataset_path), out=str(out_dir), method="trajdeleter", fraction=0.01,
        seed=seed, audit=True, overwrite=overwrite)})
    return run(config)

